#include "cairn/net/put_blobs_wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpc/slice.h>
#include <grpcpp/support/slice.h>

#include <cstring>
#include <tuple>

#include "cairn/codec/checksum.h"
#include "cairn/codec/crypto.h"
#include "cairn/net/convert.h"
#include "cairn/v1/peer.pb.h"

namespace cairn::net {
namespace {

using google::protobuf::io::CodedOutputStream;

// Wire-format tags (field number << 3 | wire type): PutBlobsRequest.blobs = 1 (length-delimited);
// PutBlobRequest.key = 1, blob = 2, checksum = 3 (length-delimited), extra = 4 (varint).
constexpr uint8_t kBlobsTag = (1 << 3) | 2;
constexpr uint8_t kKeyTag = (1 << 3) | 2;
constexpr uint8_t kBlobTag = (2 << 3) | 2;
constexpr uint8_t kChecksumTag = (3 << 3) | 2;
constexpr uint8_t kExtraTag = (4 << 3) | 0;

constexpr size_t kChecksumBytes = std::tuple_size_v<codec::Checksum>;  // ChecksumToProto's size

size_t LengthDelimited(size_t payload) {
  return 1 + CodedOutputStream::VarintSize64(payload) + payload;
}

struct Item {
  std::string key;       // the serialized BlobKey
  std::string checksum;  // 16 bytes
  size_t size = 0;       // the serialized PutBlobRequest
};

uint8_t* WriteField(uint8_t tag, const uint8_t* data, size_t size, uint8_t* out) {
  *out++ = tag;
  out = CodedOutputStream::WriteVarint64ToArray(size, out);
  if (size > 0) std::memcpy(out, data, size);
  return out + size;
}

}  // namespace

EncodedPutBlobs EncodePutBlobs(std::span<const BlobPut* const> puts) {
  std::vector<Item> items(puts.size());
  size_t total = 0;
  for (size_t i = 0; i < puts.size(); ++i) {
    const BlobPut& put = *puts[i];
    v1::BlobKey key;
    ToProto(put.key, &key);
    key.SerializeToString(&items[i].key);  // no maps: protobuf's order is the deterministic one
    // The key is always present (a set message field), the blob never empty, the checksum
    // 16 bytes (computed below, just before the blob is copied); `extra` is written only when
    // true (proto3 leaves defaults out).
    size_t size = LengthDelimited(items[i].key.size()) + LengthDelimited(put.blob.size()) +
                  LengthDelimited(kChecksumBytes) + (put.options.extra ? 2 : 0);
    items[i].size = size;
    total += LengthDelimited(size);
  }

  grpc_slice slice = grpc_slice_malloc(total);
  uint8_t* const begin = GRPC_SLICE_START_PTR(slice);
  uint8_t* out = begin;
  // Hashed item by item right after it is written, while its bytes are still in the cache (a
  // batch is larger than the cache: hashing it whole afterwards read it all from memory again).
  codec::Sha256Hasher hasher;
  for (size_t i = 0; i < puts.size(); ++i) {
    uint8_t* const item_begin = out;
    const BlobPut& put = *puts[i];
    Item& item = items[i];
    item.checksum = ChecksumToProto(codec::BlobChecksum(put.blob));
    *out++ = kBlobsTag;
    out = CodedOutputStream::WriteVarint64ToArray(item.size, out);
    out = WriteField(kKeyTag, reinterpret_cast<const uint8_t*>(item.key.data()), item.key.size(),
                     out);
    out = WriteField(kBlobTag, put.blob.data(), put.blob.size(), out);
    out = WriteField(kChecksumTag, reinterpret_cast<const uint8_t*>(item.checksum.data()),
                     item.checksum.size(), out);
    if (put.options.extra) {
      *out++ = kExtraTag;
      *out++ = 1;
    }
    hasher.Update(ByteSpan(item_begin, static_cast<size_t>(out - item_begin)));
  }

  EncodedPutBlobs encoded;
  encoded.bytes = total;
  encoded.hash = hasher.Finish();
  grpc::Slice owned(slice, grpc::Slice::STEAL_REF);
  encoded.request = grpc::ByteBuffer(&owned, 1);
  return encoded;
}

}  // namespace cairn::net
