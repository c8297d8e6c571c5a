#include "cairn/api/json_paths.h"

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cairn/base/bytes.h"
#include "gtest/gtest.h"

namespace cairn::api {
namespace {

// std::mt19937_64 seeded from the clock (or $CAIRN_TEST_SEED), the seed traced on failure (as
// daemon/test_util.h's, which api/ does not include).
class SeededRandom {
 public:
  SeededRandom()
      : seed_(getenv("CAIRN_TEST_SEED") ? std::strtoull(getenv("CAIRN_TEST_SEED"), nullptr, 10)
                                        : std::random_device{}()),
        trace_(__FILE__, __LINE__, "CAIRN_TEST_SEED=" + std::to_string(seed_)),
        rng_(seed_) {}
  std::mt19937_64& rng() { return rng_; }

 private:
  uint64_t seed_;
  ::testing::ScopedTrace trace_;
  std::mt19937_64 rng_;
};

using nlohmann::json;

TEST(Base64Test, Rfc4648Vectors) {
  // RFC 4648 §10.
  const std::pair<std::string, std::string> kCases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kCases) {
    EXPECT_EQ(ToBase64(plain), encoded);
    auto decoded = FromBase64(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded;
    EXPECT_EQ(*decoded, plain);
  }
  // Unpadded input is accepted.
  EXPECT_EQ(*FromBase64("Zm9vYg"), "foob");
}

TEST(Base64Test, RejectsMalformed) {
  for (const char* bad : {"Z", "Zm9v!", "Zm 9v", "Zg===", "=Zg=", "Zh==", "Zm9vY==="}) {
    EXPECT_FALSE(FromBase64(bad).ok()) << bad;
  }
}

TEST(Base64Test, RandomRoundTrip) {
  SeededRandom random;
  for (int i = 0; i < 500; ++i) {
    std::string s(random.rng()() % 64, '\0');
    for (char& c : s) c = static_cast<char>(random.rng()());
    auto back = FromBase64(ToBase64(s));
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(*back, s);
  }
}

TEST(SanitizeUtf8Test, ReplacesEachInvalidByte) {
  const std::pair<std::string, std::string> kCases[] = {
      {"plain", "plain"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},                            // valid é stays
      {"caf\xe9", "caf\xef\xbf\xbd"},                            // Latin-1 é
      {"\xff\xfe", "\xef\xbf\xbd\xef\xbf\xbd"},                  // two bad bytes, two U+FFFD
      {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                  // overlong '/'
      {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // surrogate
      {"a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},                // truncated sequence
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},                  // emoji stays
  };
  for (const auto& [in, want] : kCases) {
    EXPECT_EQ(SanitizeUtf8(in), want) << ToHex(AsBytes(in));
    EXPECT_TRUE(IsValidUtf8(SanitizeUtf8(in)));
  }
}

TEST(PathFieldTest, ValidUtf8IsAPlainString) {
  json j;
  SetPathField(j, "path", "docs/caf\xc3\xa9.txt");
  EXPECT_EQ(j["path"], "docs/caf\xc3\xa9.txt");
  EXPECT_FALSE(j.contains("path_base64"));
  EXPECT_EQ(*GetPathField(j, "path"), "docs/caf\xc3\xa9.txt");
}

TEST(PathFieldTest, InvalidUtf8RoundTripsExactly) {
  json j;
  SetPathField(j, "path", "caf\xe9");
  EXPECT_EQ(j["path"], "caf\xef\xbf\xbd");
  EXPECT_EQ(j["path_base64"], "Y2Fm6Q==");  // the spec's example
  // Survives serialization (nlohmann would throw on raw invalid bytes).
  std::string text = DumpJson(j);
  auto parsed = ParseJson(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*GetPathField(*parsed, "path"), "caf\xe9");
}

TEST(PathFieldTest, RandomBytesRoundTripThroughJsonText) {
  SeededRandom random;
  for (int i = 0; i < 300; ++i) {
    std::vector<std::string> names(random.rng()() % 4);
    for (std::string& n : names) {
      n.resize(1 + random.rng()() % 24);
      for (char& c : n) c = static_cast<char>(random.rng()() % 256);
    }
    json j;
    SetPathField(j, "target", names.empty() ? std::string("x") : names[0]);
    SetPathArray(j, "paths", names);
    auto parsed = ParseJson(DumpJson(j));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*GetPathField(*parsed, "target"), names.empty() ? std::string("x") : names[0]);
    EXPECT_EQ(*GetPathArray(*parsed, "paths"), names);
  }
}

TEST(PathFieldTest, ArrayBase64OnlyWhenNeeded) {
  json j;
  SetPathArray(j, "paths", {"/a", "/b"});
  EXPECT_FALSE(j.contains("paths_base64"));
  SetPathArray(j, "tags", {"ok", "bad\x80"});
  ASSERT_TRUE(j.contains("tags_base64"));
  EXPECT_EQ(j["tags_base64"].size(), 2u);
  EXPECT_EQ(*GetPathArray(j, "tags"), (std::vector<std::string>{"ok", "bad\x80"}));
}

TEST(PathFieldTest, WrongTypesAreErrorsNotExceptions) {
  const char* kBodies[] = {
      R"({"path": 3})",        R"({"path_base64": "!!"})",
      R"({"path_base64": 7})", R"({"paths": "notarray"})",
      R"({"paths": [1, 2]})",  R"({"paths_base64": ["%%"]})",
      R"([1, 2, 3])",
  };
  for (const char* body : kBodies) {
    json j = json::parse(body);
    bool path_ok = GetPathField(j, "path").ok();
    bool paths_ok = GetPathArray(j, "paths").ok();
    EXPECT_FALSE(path_ok && paths_ok) << body;
  }
  EXPECT_EQ(*GetPathField(json::object(), "path"), "");
  EXPECT_TRUE(GetPathArray(json::object(), "paths")->empty());
}

TEST(JsonTest, ParseJsonRejectsGarbage) {
  for (const char* bad : {"", "{", "{\"a\":}", "\xff\xfe", "[1,2", "nul"}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << bad;
  }
  EXPECT_TRUE(ParseJson("{\"a\": [1, 2]}").ok());
}

TEST(JsonTest, StatusRoundTrip) {
  absl::Status st = absl::NotFoundError("no snapshot 'abcd'");
  json j = StatusToJson(st);
  EXPECT_EQ(j["code"], "NOT_FOUND");
  EXPECT_EQ(StatusFromJson(j), st);
  EXPECT_EQ(StatusFromJson(json{{"code", "BOGUS"}, {"message", "m"}}).code(),
            absl::StatusCode::kUnknown);
  // Raw bytes in a message do not break serialization.
  EXPECT_NO_THROW(DumpJson(json{{"error", StatusToJson(absl::InternalError("bad \xff"))}}));
}

TEST(Rfc3339Test, Formats) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1'704'164'645'123'456'789), "2024-01-02T03:04:05Z");
  EXPECT_EQ(FormatRfc3339(1'704'164'645'123'456'789, true), "2024-01-02T03:04:05.123456789Z");
  EXPECT_EQ(FormatRfc3339(-1, true), "1969-12-31T23:59:59.999999999Z");
}

}  // namespace
}  // namespace cairn::api
