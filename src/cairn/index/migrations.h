// Internal to index/: the schema migrations embedded from migrations/NNNN_name.sql at build
// time (see CMakeLists.txt). Migration N is applied when PRAGMA user_version < N.
// Thread-safety: immutable data.
#pragma once

#include <span>

namespace cairn::index::internal {

struct Migration {
  int version;       // N of NNNN_name.sql; versions are 1, 2, 3, ... in order
  const char* name;  // "NNNN_name"
  const char* sql;   // the file's text, one or more statements
};

// All migrations, ascending by version (generated migrations_embedded.cc).
std::span<const Migration> Migrations();

}  // namespace cairn::index::internal
