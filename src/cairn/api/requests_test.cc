#include "cairn/api/requests.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cairn::api {
namespace {

// The keep policy's one JSON encoding (a source's "keep") decodes to the same policy (a forget
// or source request), with only the rules that are set written.
TEST(RetentionPolicyJsonTest, RoundTrip) {
  engine::RetentionPolicy p;
  EXPECT_EQ(ToJson(p), Json::object());
  p.keep_last = 3;
  p.keep_monthly = -1;
  p.keep_within = engine::RetentionDuration{.years = 1, .days = 2, .hours = 12};
  p.keep_tags = {"a", "b,c"};
  Json j = ToJson(p);
  EXPECT_EQ(j, Json::parse(R"({"keep_last": 3, "keep_monthly": -1, "keep_within": "1y2d12h",
                               "keep_tags": ["a", "b,c"]})"));
  engine::RetentionPolicy back;
  ASSERT_TRUE(FromJson(j, &back).ok());
  EXPECT_EQ(back, p);

  // Absent, null or "" fields leave the rule unset; bad values name the field.
  engine::RetentionPolicy unset;
  ASSERT_TRUE(FromJson(Json::parse(R"({"keep_within": "", "keep_daily": null})"), &unset).ok());
  EXPECT_TRUE(unset.empty());
  for (const char* bad : {R"({"keep_within": 7})", R"({"keep_within": "7x"})",
                          R"({"keep_last": -2})", R"({"keep_tags": "t"})"}) {
    engine::RetentionPolicy q;
    EXPECT_TRUE(absl::IsInvalidArgument(FromJson(Json::parse(bad), &q))) << bad;
  }
  // A forget request and a source request decode the same fields into the same type.
  auto forget = Decode<ForgetRequest>(j);
  ASSERT_TRUE(forget.ok()) << forget.status();
  EXPECT_EQ(forget->policy, p);
  Json source = j;
  source["path"] = "/data";
  auto added = Decode<SourceRequest>(source);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->keep, p);
}

// What the CLI encodes the server decodes to the same request, raw-byte paths included.
TEST(RequestCodecTest, EncodedRequestsDecodeToThemselves) {
  const std::string raw = "/data/caf\xe9";  // not UTF-8: goes as path_base64
  BackupRequest b;
  b.paths = {"/a", raw};
  b.ec = codec::ErasureScheme{4, 2};
  b.offsite = 1;
  b.tags = {"t"};
  b.excludes = {"*.o"};
  b.rehash = true;
  auto b2 = Decode<BackupRequest>(ToJson(b));
  ASSERT_TRUE(b2.ok()) << b2.status();
  EXPECT_EQ(b2->paths, b.paths);
  EXPECT_FALSE(b2->copies.has_value());
  ASSERT_TRUE(b2->ec.has_value());
  EXPECT_EQ(b2->ec->ToString(), "4+2");
  EXPECT_EQ(b2->offsite, 1u);
  EXPECT_EQ(b2->tags, b.tags);
  EXPECT_EQ(b2->excludes, b.excludes);
  EXPECT_TRUE(b2->rehash);

  RestoreRequest r;
  r.snapshot = "abc";
  r.path = "home/x";
  r.target = raw;
  auto r2 = Decode<RestoreRequest>(ToJson(r));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->snapshot, "abc");
  EXPECT_EQ(r2->path, "home/x");
  EXPECT_EQ(r2->target, raw);
  r.snapshot = "latest";
  r.path = "/home/x";
  r.at_ns = 1700000000000000000;
  r2 = Decode<RestoreRequest>(ToJson(r));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->at_ns, r.at_ns);

  auto c = Decode<CheckRequest>(ToJson(CheckRequest{.read_data = true, .read_subset = 0.125}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->read_data);
  EXPECT_DOUBLE_EQ(c->read_subset, 0.125);

  ForgetRequest f;
  f.snapshots = {"abc"};
  f.dry_run = true;
  f.prune = false;
  auto f2 = Decode<ForgetRequest>(ToJson(f));
  ASSERT_TRUE(f2.ok()) << f2.status();
  EXPECT_EQ(f2->snapshots, f.snapshots);
  EXPECT_TRUE(f2->dry_run);
  EXPECT_FALSE(f2->prune);

  auto d = Decode<DeleteRequest>(ToJson(DeleteRequest{.path = raw, .snapshot = ""}));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->path, raw);
  EXPECT_EQ(d->snapshot, "");

  auto q = Decode<ReclaimRequest>(ToJson(ReclaimRequest{.quota = 1ull << 40}));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->quota, 1ull << 40);

  SourceRequest s;
  s.path = raw;
  s.copies = 2;
  s.excludes = {"*.tmp"};
  s.schedule = std::chrono::hours(1);
  s.watch = false;
  s.keep.keep_daily = 7;
  auto s2 = Decode<SourceRequest>(ToJson(s));
  ASSERT_TRUE(s2.ok()) << s2.status();
  EXPECT_EQ(s2->path, raw);
  EXPECT_EQ(s2->copies, 2u);
  EXPECT_EQ(s2->excludes, s.excludes);
  EXPECT_EQ(s2->schedule, s.schedule);
  EXPECT_FALSE(s2->watch);
  EXPECT_EQ(s2->keep, s.keep);
}

// Malformed bodies give INVALID_ARGUMENT, never an exception.
TEST(RequestCodecTest, MalformedFieldsAreInvalidArgument) {
  const std::vector<std::pair<const char*, absl::Status (*)(const Json&)>> cases = {
      {R"({"paths": ["rel"]})", [](const Json& j) { return Decode<BackupRequest>(j).status(); }},
      {R"({"paths": ["/a"], "copies": 2, "ec": "4+2"})",
       [](const Json& j) { return Decode<BackupRequest>(j).status(); }},
      {R"({"target": "/t", "at": "yesterday"})",
       [](const Json& j) { return Decode<RestoreRequest>(j).status(); }},
      {R"({"read_subset_percent": 0})",
       [](const Json& j) { return Decode<CheckRequest>(j).status(); }},
      {R"({"read_data": "yes"})", [](const Json& j) { return Decode<CheckRequest>(j).status(); }},
      {R"({"snapshots": ["a"], "keep_last": 1})",
       [](const Json& j) { return Decode<ForgetRequest>(j).status(); }},
      {R"({"path": "x"})", [](const Json& j) { return Decode<DeleteRequest>(j).status(); }},
      {R"({"quota": -1})", [](const Json& j) { return Decode<ReclaimRequest>(j).status(); }},
      {R"({"path": "/s", "schedule": 5})",
       [](const Json& j) { return Decode<SourceRequest>(j).status(); }},
  };
  for (const auto& [text, decode] : cases) {
    EXPECT_TRUE(absl::IsInvalidArgument(decode(Json::parse(text)))) << text;
  }
}

}  // namespace
}  // namespace cairn::api
