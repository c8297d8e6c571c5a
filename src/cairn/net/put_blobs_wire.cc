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
  size_t copied = 0;  // bytes written into the request's own slice
  for (size_t i = 0; i < puts.size(); ++i) {
    const BlobPut& put = *puts[i];
    v1::BlobKey key;
    ToProto(put.key, &key);
    key.SerializeToString(&items[i].key);  // no maps: protobuf's order is the deterministic one
    // The key is always present (a set message field), the blob never empty, the checksum
    // 16 bytes (computed below, just before the blob is written); `extra` is written only when
    // true (proto3 leaves defaults out).
    size_t size = LengthDelimited(items[i].key.size()) + LengthDelimited(put.blob.size()) +
                  LengthDelimited(kChecksumBytes) + (put.options.extra ? 2 : 0);
    items[i].size = size;
    total += LengthDelimited(size);
    copied += LengthDelimited(size);
    if (put.blob.size() >= kBlobByReference) copied -= put.blob.size();
  }

  // One slice holds the framing, the keys, the checksums and the small blobs; a blob of
  // kBlobByReference bytes or more is a slice of its own that points at the caller's bytes (no
  // copy: a put batch is sent before PutBlobs returns, and the caller keeps the blobs until then).
  grpc_slice own = grpc_slice_malloc(copied);
  uint8_t* const begin = GRPC_SLICE_START_PTR(own);
  uint8_t* out = begin;
  uint8_t* piece = begin;  // start of the bytes of `own` not yet in `slices`
  std::vector<grpc::Slice> slices;
  auto cut = [&] {
    if (out == piece) return;
    slices.emplace_back(
        grpc_slice_sub(own, static_cast<size_t>(piece - begin), static_cast<size_t>(out - begin)),
        grpc::Slice::STEAL_REF);
    piece = out;
  };
  // Hashed piece by piece right after it is written, while its bytes are still in the cache (a
  // batch is larger than the cache: hashing it whole afterwards read it all from memory again).
  codec::Sha256Hasher hasher;
  for (size_t i = 0; i < puts.size(); ++i) {
    uint8_t* item_begin = out;
    const BlobPut& put = *puts[i];
    Item& item = items[i];
    item.checksum = ChecksumToProto(codec::BlobChecksum(put.blob));
    *out++ = kBlobsTag;
    out = CodedOutputStream::WriteVarint64ToArray(item.size, out);
    out = WriteField(kKeyTag, reinterpret_cast<const uint8_t*>(item.key.data()), item.key.size(),
                     out);
    if (put.blob.size() >= kBlobByReference) {
      *out++ = kBlobTag;
      out = CodedOutputStream::WriteVarint64ToArray(put.blob.size(), out);
      hasher.Update(ByteSpan(item_begin, static_cast<size_t>(out - item_begin)));
      cut();
      slices.emplace_back(grpc_slice_from_static_buffer(put.blob.data(), put.blob.size()),
                          grpc::Slice::STEAL_REF);
      hasher.Update(put.blob);
      item_begin = out;
    } else {
      out = WriteField(kBlobTag, put.blob.data(), put.blob.size(), out);
    }
    out = WriteField(kChecksumTag, reinterpret_cast<const uint8_t*>(item.checksum.data()),
                     item.checksum.size(), out);
    if (put.options.extra) {
      *out++ = kExtraTag;
      *out++ = 1;
    }
    hasher.Update(ByteSpan(item_begin, static_cast<size_t>(out - item_begin)));
  }
  cut();
  grpc_slice_unref(own);  // the pieces hold their own references

  EncodedPutBlobs encoded;
  encoded.bytes = total;
  encoded.hash = hasher.Finish();
  encoded.request = grpc::ByteBuffer(slices.data(), slices.size());
  return encoded;
}

}  // namespace cairn::net
