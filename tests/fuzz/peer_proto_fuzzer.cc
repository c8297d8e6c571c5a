// Fuzz target: what a storage peer does with the bytes of a peer RPC after gRPC hands it the
// protobuf (net/convert.h, docs/protocol.md): the conversions that validate every key, checksum,
// page and move, and for PutBlobs the per-blob checks of PutBlob (store::ValidateBlobForKey:
// checksum, envelope, key). PutBlobs has no hand-written parser on the receiving side (the
// sender's net/put_blobs_wire.h writes protobuf's own encoding), so protobuf parses it here.
// The first byte picks the message (mod 9), the rest is its serialized form (mode 8: the rest is
// a gRPC peer string and a listen address, for HostFromGrpcPeer and FillWildcardHost).
#include <algorithm>

#include "cairn/codec/checksum.h"
#include "cairn/format/blob.h"
#include "cairn/net/convert.h"
#include "cairn/net/limits.h"
#include "cairn/store/blob_store.h"
#include "cairn/v1/peer.pb.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

template <typename Msg>
bool Parse(ByteSpan in, Msg* msg) {
  return msg->ParseFromArray(in.data(), static_cast<int>(in.size()));
}

void PutBlobs(ByteSpan in) {
  v1::PutBlobsRequest req;
  if (!Parse(in, &req)) return;
  for (const v1::PutBlobRequest& put : req.blobs()) {
    auto key = net::FromProto(put.key());
    auto checksum = net::ChecksumFromProto(put.checksum());
    if (!key.ok() || !checksum.ok() || put.blob().empty() ||
        put.blob().size() > net::kMaxWireBlobSize) {
      continue;
    }
    ByteSpan blob = AsBytes(put.blob());
    absl::Status valid = store::ValidateBlobForKey(*key, blob, *checksum);
    if (valid.ok()) {
      // Accepted blobs are well-formed envelopes for their key, with the checksum they carry.
      auto h = format::ParseBlobHeader(blob);
      FUZZ_CHECK(h.ok() && h->owner == key->owner && h->chunk == key->chunk);
      FUZZ_CHECK(codec::BlobChecksum(blob) == *checksum);
    }
  }
}

Seeds MakeSeeds() {
  Seeds seeds;
  v1::BlobKey key;
  key.set_owner(5);
  key.set_chunk_id(std::string(32, 'c'));
  key.set_shard(1);
  v1::HasBlobsRequest has;
  *has.add_keys() = key;
  seeds.emplace_back("has", Concat(0, AsBytes(has.SerializeAsString())));
  v1::ListBlobsRequest list;
  list.set_owner(5);
  *list.mutable_after() = key;
  list.set_limit(100);
  seeds.emplace_back("list", Concat(3, AsBytes(list.SerializeAsString())));
  v1::ListBlobsResponse page;
  v1::ListedBlob* listed = page.add_blobs();
  *listed->mutable_key() = key;
  listed->set_size(100);
  listed->set_checksum(std::string(16, 'x'));
  seeds.emplace_back("page", Concat(4, AsBytes(page.SerializeAsString())));
  // A PutBlobs of one genuine blob (any key works for the envelope checks).
  codec::Key master{};
  auto sealed = format::SealChunk(codec::DeriveOwnerKeys(master), 5, BlobKind::kData,
                                  AsBytes("some chunk bytes"));
  v1::PutBlobsRequest puts;
  v1::PutBlobRequest* put = puts.add_blobs();
  put->mutable_key()->set_owner(5);
  put->mutable_key()->set_chunk_id(std::string(sealed->id.bytes.begin(), sealed->id.bytes.end()));
  put->set_blob(std::string(sealed->blob.begin(), sealed->blob.end()));
  codec::Checksum sum = codec::BlobChecksum(sealed->blob);
  put->set_checksum(net::ChecksumToProto(sum));
  seeds.emplace_back("put_blobs", Concat(7, AsBytes(puts.SerializeAsString())));
  seeds.emplace_back("peer_strings", Concat(8, AsBytes("ipv6:%5B::1%5D:5000\n0.0.0.0:7001")));
  return seeds;
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  using namespace cairn::fuzz;
  if (size == 0) return 0;
  ByteSpan in(data + 1, size - 1);
  switch (data[0] % 9) {
    case 0: {
      v1::HasBlobsRequest m;
      if (Parse(in, &m)) {
        auto keys = net::KeysFromProto(m);
        if (keys.ok()) FUZZ_CHECK(keys->size() == static_cast<size_t>(m.keys_size()));
      }
      break;
    }
    case 1: {
      v1::DeleteBlobsRequest m;
      if (Parse(in, &m)) (void)net::KeysFromProto(m);
      break;
    }
    case 2: {
      v1::GetBlobsRequest m;
      if (Parse(in, &m)) {
        auto keys = net::KeysFromProto(m);
        if (keys.ok()) FUZZ_CHECK(keys->size() <= net::kMaxBlobsPerBatch);
      }
      break;
    }
    case 3: {
      v1::ListBlobsRequest m;
      if (Parse(in, &m)) {
        auto args = net::FromProto(m);
        if (args.ok()) FUZZ_CHECK(args->limit >= 1 && args->limit <= net::kMaxKeysPerCall);
      }
      break;
    }
    case 4: {
      v1::ListBlobsResponse m;
      if (Parse(in, &m) && size > 1) {
        size_t limit = 1 + data[1] % 16;
        auto page = net::PageFromProto(m, /*owner=*/5, limit);
        if (page.ok()) FUZZ_CHECK(page->blobs.size() <= limit);
      }
      break;
    }
    case 5: {
      v1::BlobMovedRequest m;
      if (Parse(in, &m)) (void)net::MovesFromProto(m);
      break;
    }
    case 6: {
      v1::PingRequest m;
      if (Parse(in, &m)) {
        (void)net::FromProto(m.sender());
        for (const v1::PeerInfo& p : m.known()) (void)net::FromProto(p);
      }
      break;
    }
    case 7:
      PutBlobs(in);
      break;
    default: {
      std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
      size_t nl = std::min(text.find('\n'), text.size());
      std::string host = net::HostFromGrpcPeer(text.substr(0, nl));
      std::string address(text.substr(std::min(nl + 1, text.size())));
      (void)net::FillWildcardHost(address, host);
    }
  }
  return 0;
}
