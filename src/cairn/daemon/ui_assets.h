// The dashboard's files (docs/dashboard.md), embedded into the binary at build time:
// ui_assets.cmake turns every file under daemon/ui/ into a byte array of the generated
// ui_assets.cc. The API server serves them at `/` (index.html) and `/ui/NAME` without the token
// (docs/security.md "The local API and browsers").
//
// Thread-safety: immutable data.
#pragma once

#include <string_view>

namespace cairn::daemon {

struct UiAsset {
  std::string_view name;          // file name under ui/, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset named `name` ("index.html", "app.js", ...), or nullptr.
const UiAsset* FindUiAsset(std::string_view name);

}  // namespace cairn::daemon
