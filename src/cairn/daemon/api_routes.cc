#include "cairn/daemon/api_routes.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <exception>

#include "absl/strings/str_cat.h"
#include "cairn/api/json_paths.h"
#include "cairn/daemon/api_server.h"

namespace cairn::daemon {

std::string ApiRequest::get_param_value(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

const std::string* ApiRequest::FindHeader(std::string name) const {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::string ApiRequest::get_header_value(const std::string& name) const {
  const std::string* v = FindHeader(name);
  return v == nullptr ? std::string() : *v;
}

void WriteJson(ApiResponse& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(api::DumpJson(body) + "\n", "application/json");
}

void WriteError(ApiResponse& res, const absl::Status& status) {
  WriteJson(res, HttpStatusFor(status.code()),
            nlohmann::json{{"error", api::StatusToJson(status)}});
}

RouteHandler Wrap(std::function<absl::StatusOr<Reply>(const ApiRequest&)> fn) {
  return [fn = std::move(fn)](const ApiRequest& req, ApiResponse& res) {
    try {
      absl::StatusOr<Reply> reply = fn(req);
      if (reply.ok()) {
        WriteJson(res, reply->first, reply->second);
      } else {
        WriteError(res, reply.status());
      }
    } catch (const std::exception& e) {
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    } catch (...) {
      WriteError(res, absl::InternalError("internal error"));
    }
  };
}

RouteHandler BytesRoute(std::function<absl::StatusOr<std::string>(const ApiRequest&)> get,
                        std::string content_type) {
  return [get = std::move(get), type = std::move(content_type)](const ApiRequest& req,
                                                                ApiResponse& res) {
    try {
      absl::StatusOr<std::string> bytes = get(req);
      if (!bytes.ok()) {
        WriteError(res, bytes.status());
        return;
      }
      res.status = 200;
      res.set_content(*std::move(bytes), type);
    } catch (const std::exception& e) {
      WriteError(res, absl::InternalError(absl::StrCat("internal error: ", e.what())));
    } catch (...) {
      WriteError(res, absl::InternalError("internal error"));
    }
  };
}

absl::StatusOr<std::string> RawParam(const ApiRequest& req, const std::string& name) {
  if (!req.has_param(name + "_base64")) return req.get_param_value(name);
  auto decoded = api::FromBase64(req.get_param_value(name + "_base64"));
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter '", name, "_base64' is not base64"));
  }
  return *std::move(decoded);
}

absl::StatusOr<bool> ParseBool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v.empty() || v == "0" || v == "false" || v == "no") return false;
  return absl::InvalidArgumentError(absl::StrCat("query parameter '", name, "' must be 0 or 1"));
}

absl::StatusOr<uint64_t> ParseByteCount(const ApiRequest& req, const char* name) {
  if (!req.has_param(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter '", name, "' (bytes) is required"));
  }
  std::string v = req.get_param_value(name);
  uint64_t n = 0;
  bool ok = !v.empty() && v.size() <= 20;
  for (char c : v) ok = ok && c >= '0' && c <= '9';
  for (size_t i = 0; ok && i < v.size(); ++i) {
    uint64_t digit = static_cast<uint64_t>(v[i] - '0');
    if (n > (UINT64_MAX - digit) / 10) ok = false;  // overflow
    n = n * 10 + digit;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("query parameter '", name,
                                                   "' must be a non-negative integer (bytes), "
                                                   "got '",
                                                   api::SanitizeUtf8(v), "'"));
  }
  return n;
}

}  // namespace cairn::daemon
