#include "cairn/format/tree.h"

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cairn/v1/format.pb.h"
#include "gtest/gtest.h"

namespace cairn::format {
namespace {

using namespace std::string_literals;

ChunkId Id(uint8_t fill) {
  ChunkId id;
  id.bytes.fill(fill);
  id.bytes[0] = 0x5a;
  return id;
}

void ExpectCleanError(const absl::Status& st) {
  EXPECT_TRUE(st.code() == absl::StatusCode::kInvalidArgument ||
              st.code() == absl::StatusCode::kDataLoss)
      << st;
}

TreeEntry File(std::string name, std::vector<ChunkId> chunks) {
  TreeEntry e;
  e.name = std::move(name);
  e.type = EntryType::kFile;
  e.mode = 04755;
  e.uid = 1000;
  e.gid = 100;
  e.mtime_ns = 1700000000123456789;
  e.ctime_ns = -5;
  e.size = 123456789012;
  e.inode = 42;
  e.device = 0x801;
  e.chunks = std::move(chunks);
  return e;
}

TreeEntry Dir(std::string name, ChunkId subtree) {
  TreeEntry e;
  e.name = std::move(name);
  e.type = EntryType::kDirectory;
  e.mode = 01777;
  e.subtree = subtree;
  return e;
}

TreeEntry Link(std::string name, std::string target) {
  TreeEntry e;
  e.name = std::move(name);
  e.type = EntryType::kSymlink;
  e.mode = 0777;
  e.symlink_target = std::move(target);
  return e;
}

Tree SampleTree() {
  Tree t;
  t.entries = {
      File("caf\xe9"s, {Id(1), Id(2), Id(3)}),
      File("a b"s, {}),
      File("\xff\xfe"s, {Id(4)}),
      Dir("docs"s, Id(9)),
      Link("link"s, "../\xff\x01odd target\n"s),
      File("caf\xc3\xa9"s, {Id(5)}),
      File("x"s, {Id(6)}),
  };
  t.entries[1].hardlink_group = 3;
  t.entries.back().hardlink_group = 3;
  std::sort(t.entries.begin(), t.entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return a.name < b.name; });
  return t;
}

Snapshot SampleSnapshot() {
  Snapshot s;
  s.time_ns = 1712345678901234567;
  s.owner = 12;
  s.hostname = "laptop";
  s.paths = {"/home/alice/Documents"s, "/srv/caf\xe9/\xff"s};
  s.tags = {"daily", "before-upgrade"};
  s.root = Id(7);
  s.parent = Id(8);
  s.copies = 3;
  s.stats = SnapshotStats{10, 2, 12345, 678, 2034, 15, 4};
  return s;
}

TEST(TreeTest, RoundTrip) {
  Tree t = SampleTree();
  Bytes enc = EncodeTree(t);
  ASSERT_FALSE(enc.empty());
  EXPECT_EQ(enc[0], kTreeVersion);
  auto dec = DecodeTree(enc);
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(*dec, t);
  EXPECT_EQ(EncodeTree(*dec), enc);  // deterministic
}

TEST(TreeTest, EmptyTreeRoundTrip) {
  auto dec = DecodeTree(EncodeTree(Tree{}));
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_TRUE(dec->entries.empty());
}

TEST(TreeTest, RejectsInvalidTrees) {
  struct Case {
    std::string name;
    std::function<void(Tree&)> mutate;
  };
  const std::vector<Case> cases = {
      {"unsorted", [](Tree& t) { std::swap(t.entries[0], t.entries[1]); }},
      {"duplicate", [](Tree& t) { t.entries[1].name = t.entries[0].name; }},
      {"slash", [](Tree& t) { t.entries.back().name = "y/z"; }},
      {"only slash", [](Tree& t) { t.entries.back().name = "z/"; }},
      {"empty name", [](Tree& t) { t.entries[0].name = ""; }},
      {"dot", [](Tree& t) { t.entries[0].name = "."; }},
      {"dotdot", [](Tree& t) { t.entries[0].name = ".."; }},
      {"nul", [](Tree& t) { t.entries.back().name = "y\0z"s; }},
      {"type 0", [](Tree& t) { t.entries[0].type = static_cast<EntryType>(0); }},
      {"type 4", [](Tree& t) { t.entries[0].type = static_cast<EntryType>(4); }},
      {"file with subtree", [](Tree& t) { t.entries.back().subtree = Id(1); }},
      {"directory without subtree",
       [](Tree& t) {
         for (auto& e : t.entries)
           if (e.type == EntryType::kDirectory) e.subtree.reset();
       }},
      {"directory with chunks",
       [](Tree& t) {
         for (auto& e : t.entries)
           if (e.type == EntryType::kDirectory) e.chunks.push_back(Id(1));
       }},
      {"symlink with chunks",
       [](Tree& t) {
         for (auto& e : t.entries)
           if (e.type == EntryType::kSymlink) e.chunks.push_back(Id(1));
       }},
      {"file with target", [](Tree& t) { t.entries.back().symlink_target = "x"; }},
      {"mode beyond 07777", [](Tree& t) { t.entries[0].mode = 0100644; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tree t = SampleTree();
    c.mutate(t);
    auto dec = DecodeTree(EncodeTree(t));
    EXPECT_FALSE(dec.ok());
    ExpectCleanError(dec.status());
  }
}

Bytes Versioned(uint8_t version, const std::string& body) {
  Bytes out(body.size() + 1);
  out[0] = version;
  std::copy(body.begin(), body.end(), out.begin() + 1);
  return out;
}

TEST(TreeTest, RejectsBadChunkIdLengths) {
  for (int len : {0, 1, 31, 33}) {
    SCOPED_TRACE("length " + std::to_string(len));
    v1::TreeProto file_msg;
    auto* f = file_msg.add_entries();
    f->set_name("f");
    f->set_type(1);
    f->add_chunks(std::string(len, 'c'));
    ExpectCleanError(DecodeTree(Versioned(kTreeVersion, file_msg.SerializeAsString())).status());
    EXPECT_FALSE(DecodeTree(Versioned(kTreeVersion, file_msg.SerializeAsString())).ok());

    if (len == 0) continue;  // empty subtree means "none": tested as a missing subtree
    v1::TreeProto dir_msg;
    auto* d = dir_msg.add_entries();
    d->set_name("d");
    d->set_type(2);
    d->set_subtree(std::string(len, 's'));
    EXPECT_FALSE(DecodeTree(Versioned(kTreeVersion, dir_msg.SerializeAsString())).ok());
  }
}

TEST(TreeTest, RejectsUnknownVersionAndEmptyInput) {
  Bytes enc = EncodeTree(SampleTree());
  EXPECT_EQ(DecodeTree({}).status().code(), absl::StatusCode::kInvalidArgument);
  for (uint8_t v : {0, 2, 255}) {
    enc[0] = v;
    EXPECT_EQ(DecodeTree(enc).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(TreeTest, TruncatedInputFailsCleanly) {
  Bytes enc = EncodeTree(SampleTree());
  for (size_t n = 0; n < enc.size(); ++n) {
    SCOPED_TRACE("length " + std::to_string(n));
    auto dec = DecodeTree(ByteSpan(enc.data(), n));
    // A cut exactly between two entries still parses (the envelope's tag and chunk id catch
    // truncation); it must never yield the original tree.
    if (dec.ok()) {
      EXPECT_NE(*dec, SampleTree());
    } else {
      ExpectCleanError(dec.status());
    }
  }
  // With a single entry, every cut inside it fails.
  Tree one;
  one.entries = {File("f", {Id(1), Id(2)})};
  Bytes enc1 = EncodeTree(one);
  for (size_t n = 2; n < enc1.size(); ++n) {
    auto dec = DecodeTree(ByteSpan(enc1.data(), n));
    EXPECT_FALSE(dec.ok()) << "length " << n;
    ExpectCleanError(dec.status());
  }
}

// Entries of any successfully decoded tree satisfy the documented invariants.
void ExpectValidTree(const Tree& t) {
  for (size_t i = 0; i < t.entries.size(); ++i) {
    const TreeEntry& e = t.entries[i];
    EXPECT_FALSE(e.name.empty());
    EXPECT_EQ(e.name.find('/'), std::string::npos);
    if (i > 0) {
      EXPECT_LT(t.entries[i - 1].name, e.name);
    }
    EXPECT_EQ(e.subtree.has_value(), e.type == EntryType::kDirectory);
  }
}

TEST(TreeTest, RandomInputFailsCleanly) {
  const uint64_t seed = 77;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  Bytes enc = EncodeTree(SampleTree());
  for (int i = 0; i < 10000; ++i) {
    Bytes data;
    if (i % 2 == 0) {
      data.resize(rng() % 200);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      if (!data.empty()) data[0] = kTreeVersion;
    } else {  // mutate a few bytes of a valid encoding
      data = enc;
      for (int k = 0; k < 3; ++k) data[1 + rng() % (data.size() - 1)] = static_cast<uint8_t>(rng());
    }
    auto dec = DecodeTree(data);
    if (dec.ok()) {
      ExpectValidTree(*dec);
    } else {
      ExpectCleanError(dec.status());
    }
  }
}

TEST(SnapshotTest, RoundTrip) {
  Snapshot s = SampleSnapshot();
  Bytes enc = EncodeSnapshot(s);
  EXPECT_EQ(enc[0], kSnapshotVersion);
  auto dec = DecodeSnapshot(enc);
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(*dec, s);
}

TEST(SnapshotTest, ErasureSchemeRoundTrip) {
  Snapshot s = SampleSnapshot();
  s.ec_k = 10;
  s.ec_m = 4;
  auto dec = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(*dec, s);
}

TEST(SnapshotTest, ArchiveVersionRoundTripAndBadNamesAreRefused) {
  Snapshot s = SampleSnapshot();
  s.paths.clear();
  s.archive = "photos-2019.old_A";
  auto dec = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(*dec, s);
  for (const std::string& bad :
       std::vector<std::string>{"a/b", "..", std::string(65, 'a'), "sp ace", "caf\xc3\xa9"}) {
    EXPECT_FALSE(IsArchiveName(bad)) << bad;
    s.archive = bad;
    auto refused = DecodeSnapshot(EncodeSnapshot(s));
    EXPECT_FALSE(refused.ok()) << bad;
    if (!refused.ok()) {
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << bad;
    }
  }
  EXPECT_TRUE(IsArchiveName(std::string(64, 'z')));
}

TEST(SnapshotTest, NoParentRoundTrip) {
  Snapshot s = SampleSnapshot();
  s.parent.reset();
  s.tags.clear();
  s.stats = {};
  auto dec = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(*dec, s);
  EXPECT_FALSE(dec->parent.has_value());
}

TEST(SnapshotTest, NonUtf8TextIsReplacedNotLost) {
  Snapshot s = SampleSnapshot();
  s.hostname = "host\xff"s;
  s.tags = {"t\xe9g"s, "ok"};
  auto dec = DecodeSnapshot(EncodeSnapshot(s));
  ASSERT_TRUE(dec.ok()) << dec.status();
  EXPECT_EQ(dec->hostname, "host\xEF\xBF\xBD");
  EXPECT_EQ(dec->tags, (std::vector<std::string>{"t\xEF\xBF\xBDg", "ok"}));
  EXPECT_EQ(dec->paths, s.paths);
}

TEST(SnapshotTest, RejectsInvalidSnapshots) {
  struct Case {
    std::string name;
    std::function<void(v1::SnapshotProto&)> mutate;
  };
  const std::vector<Case> cases = {
      {"no root", [](v1::SnapshotProto& m) { m.clear_root(); }},
      {"short root", [](v1::SnapshotProto& m) { m.set_root(std::string(31, 'r')); }},
      {"long parent", [](v1::SnapshotProto& m) { m.set_parent(std::string(33, 'p')); }},
      {"relative path", [](v1::SnapshotProto& m) { m.add_paths("home/alice"); }},
      {"empty path", [](v1::SnapshotProto& m) { m.add_paths(""); }},
      {"nul in path", [](v1::SnapshotProto& m) { m.add_paths("/a\0b"s); }},
      {"ec k without m", [](v1::SnapshotProto& m) { m.set_ec_k(4); }},
      {"ec m without k", [](v1::SnapshotProto& m) { m.set_ec_m(2); }},
      {"ec k=17",
       [](v1::SnapshotProto& m) {
         m.set_ec_k(17);
         m.set_ec_m(2);
       }},
      {"ec m=9",
       [](v1::SnapshotProto& m) {
         m.set_ec_k(4);
         m.set_ec_m(9);
       }},
  };
  Bytes good = EncodeSnapshot(SampleSnapshot());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::SnapshotProto m;
    ASSERT_TRUE(m.ParseFromArray(good.data() + 1, static_cast<int>(good.size() - 1)));
    c.mutate(m);
    auto dec = DecodeSnapshot(Versioned(kSnapshotVersion, m.SerializeAsString()));
    EXPECT_FALSE(dec.ok());
    ExpectCleanError(dec.status());
  }
  EXPECT_EQ(DecodeSnapshot({}).status().code(), absl::StatusCode::kInvalidArgument);
  good[0] = 9;
  EXPECT_EQ(DecodeSnapshot(good).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SnapshotTest, TruncatedAndRandomInputFailCleanly) {
  Snapshot s = SampleSnapshot();
  Bytes enc = EncodeSnapshot(s);
  for (size_t n = 0; n < enc.size(); ++n) {
    auto dec = DecodeSnapshot(ByteSpan(enc.data(), n));
    if (dec.ok()) {
      EXPECT_NE(*dec, s) << "length " << n;
    } else {
      ExpectCleanError(dec.status());
    }
  }
  const uint64_t seed = 99;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 10000; ++i) {
    Bytes data;
    if (i % 2 == 0) {
      data.resize(rng() % 200);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      if (!data.empty()) data[0] = kSnapshotVersion;
    } else {
      data = enc;
      for (int k = 0; k < 3; ++k) data[1 + rng() % (data.size() - 1)] = static_cast<uint8_t>(rng());
    }
    auto dec = DecodeSnapshot(data);
    if (dec.ok()) {
      EXPECT_EQ(dec->root.bytes.size(), ChunkId::kSize);
      for (const auto& p : dec->paths) EXPECT_EQ(p[0], '/');
    } else {
      ExpectCleanError(dec.status());
    }
  }
}

}  // namespace
}  // namespace cairn::format
