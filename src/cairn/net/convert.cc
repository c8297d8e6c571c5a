#include "cairn/net/convert.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "cairn/base/status.h"

namespace cairn::net {

void ToProto(const BlobKey& key, v1::BlobKey* out) {
  out->set_owner(key.owner);
  out->set_chunk_id(reinterpret_cast<const char*>(key.chunk.bytes.data()), key.chunk.bytes.size());
  out->set_shard(key.shard);
}

absl::StatusOr<BlobKey> FromProto(const v1::BlobKey& key) {
  if (key.chunk_id().size() != ChunkId::kSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk id must be ", ChunkId::kSize, " bytes, got ", key.chunk_id().size()));
  }
  BlobKey out;
  out.owner = key.owner();
  std::memcpy(out.chunk.bytes.data(), key.chunk_id().data(), ChunkId::kSize);
  out.shard = key.shard();
  return out;
}

void ToProto(const cluster::PeerInfo& info, v1::PeerInfo* out) {
  out->set_peer_id(info.id);
  out->set_host_id(info.host_id);
  out->set_address(info.address);
  out->set_quota(info.quota);
  out->set_used(info.used);
  out->set_version(info.version);
  out->set_incarnation(info.incarnation);
  // Node ids travel as their 16 raw bytes; one that is not valid hex is left out.
  auto node = FromHex(info.node_id);
  if (node.ok() && node->size() == 16) {
    out->set_node_id(reinterpret_cast<const char*>(node->data()), node->size());
  }
}

cluster::PeerInfo FromProto(const v1::PeerInfo& info) {
  cluster::PeerInfo out;
  out.id = info.peer_id();
  out.host_id = info.host_id();
  out.address = info.address();
  out.quota = info.quota();
  out.used = info.used();
  out.version = info.version();
  out.incarnation = info.incarnation();
  // Anything but 16 bytes is no node id (left empty: such a peer is not pinned or trusted).
  if (info.node_id().size() == 16) out.node_id = ToHex(AsBytes(info.node_id()));
  return out;
}

std::string ChecksumToProto(const codec::Checksum& checksum) {
  return std::string(reinterpret_cast<const char*>(checksum.data()), checksum.size());
}

absl::StatusOr<codec::Checksum> ChecksumFromProto(std::string_view bytes) {
  codec::Checksum out{};
  if (bytes.size() != out.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checksum must be ", out.size(), " bytes, got ", bytes.size()));
  }
  std::memcpy(out.data(), bytes.data(), out.size());
  return out;
}

v1::PutBlobResponse::Outcome ToProto(store::PutOutcome outcome) {
  return outcome == store::PutOutcome::kAlreadyStored ? v1::PutBlobResponse::ALREADY_STORED
                                                      : v1::PutBlobResponse::STORED;
}

absl::StatusOr<store::PutOutcome> FromProto(v1::PutBlobResponse::Outcome outcome) {
  switch (outcome) {
    case v1::PutBlobResponse::STORED:
      return store::PutOutcome::kStored;
    case v1::PutBlobResponse::ALREADY_STORED:
      return store::PutOutcome::kAlreadyStored;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown put outcome ", static_cast<int>(outcome)));
  }
}

absl::StatusOr<std::vector<BlobKey>> KeysFromProto(const v1::HasBlobsRequest& request) {
  if (static_cast<size_t>(request.keys_size()) > kMaxHasBlobsKeys) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxHasBlobsKeys, " keys per HasBlobs, got ", request.keys_size()));
  }
  std::vector<BlobKey> keys;
  keys.reserve(request.keys_size());
  for (int i = 0; i < request.keys_size(); ++i) {
    auto key = FromProto(request.keys(i));
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("key ", i, ": ", key.status().message()));
    }
    keys.push_back(*key);
  }
  return keys;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; malformed escapes are kept as they are.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool IsWildcardHost(std::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::" ||
         host == "[0:0:0:0:0:0:0:0]";
}

}  // namespace

std::string HostFromGrpcPeer(std::string_view grpc_peer) {
  std::string_view rest;
  bool v6 = false;
  if (grpc_peer.substr(0, 5) == "ipv4:") {
    rest = grpc_peer.substr(5);
  } else if (grpc_peer.substr(0, 5) == "ipv6:") {
    rest = grpc_peer.substr(5);
    v6 = true;
  } else {
    return "";
  }
  std::string decoded = PercentDecode(rest);
  size_t colon = decoded.rfind(':');
  if (colon == std::string::npos || colon == 0) return "";
  std::string host = decoded.substr(0, colon);
  if (v6 && (host.front() != '[' || host.back() != ']')) return "";
  if (!v6 && host.find(':') != std::string::npos) return "";
  return host;
}

std::string FillWildcardHost(const std::string& address, const std::string& caller_host) {
  if (caller_host.empty()) return address;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return address;
  std::string_view host(address.data(), colon);
  std::string_view port(address.data() + colon + 1, address.size() - colon - 1);
  if (port.empty() || !IsWildcardHost(host)) return address;
  return caller_host + ":" + std::string(port);
}

}  // namespace cairn::net
