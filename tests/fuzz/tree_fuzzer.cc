// Fuzz target: trees and snapshots (format/tree.h, docs/formats.md "Trees", "Snapshots"), the
// metadata a restore decodes after opening a blob. Every input goes to both decoders; whatever
// decodes must re-encode to something that decodes to the same value.
#include "cairn/format/tree.h"
#include "fuzz_util.h"

namespace cairn::fuzz {
namespace {

ChunkId Id(uint8_t fill) {
  ChunkId id;
  id.bytes.fill(fill);
  return id;
}

Seeds MakeSeeds() {
  format::Tree tree;
  format::TreeEntry dir;
  dir.name = "dir";
  dir.type = format::EntryType::kDirectory;
  dir.mode = 0755;
  dir.subtree = Id(1);
  format::TreeEntry file;
  file.name = "file\xff";
  file.type = format::EntryType::kFile;
  file.mode = 04644;
  file.size = 12345;
  file.mtime_ns = 1700000000123456789;
  file.chunks = {Id(2), Id(3)};
  file.hardlink_group = 7;
  format::TreeEntry link;
  link.name = "link";
  link.type = format::EntryType::kSymlink;
  link.symlink_target = "../file";
  tree.entries = {dir, file, link};
  format::Snapshot snap;
  snap.time_ns = 1700000000000000000;
  snap.owner = 42;
  snap.hostname = "host";
  snap.paths = {"/home/a", "/etc"};
  snap.tags = {"daily"};
  snap.root = Id(4);
  snap.parent = Id(5);
  snap.ec_k = 4;
  snap.ec_m = 2;
  snap.stats.files = 3;
  return {{"tree", format::EncodeTree(tree)},
          {"empty_tree", format::EncodeTree(format::Tree{})},
          {"snapshot", format::EncodeSnapshot(snap)}};
}

}  // namespace
}  // namespace cairn::fuzz

CAIRN_FUZZ_SEEDS(cairn::fuzz::MakeSeeds())

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn;
  ByteSpan in(data, size);
  auto tree = format::DecodeTree(in);
  if (tree.ok()) {
    auto again = format::DecodeTree(format::EncodeTree(*tree));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *tree);
  }
  auto snap = format::DecodeSnapshot(in);
  if (snap.ok()) {
    auto again = format::DecodeSnapshot(format::EncodeSnapshot(*snap));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *snap);
  }
  return 0;
}
