#include "cairn/api/archives.h"

#include "cairn/api/requests.h"
#include "gtest/gtest.h"

namespace cairn::api {
namespace {

TEST(ArchiveApiTest, CreateRequestRoundTripsAndRefusesBadFields) {
  ArchiveCreateRequest r;
  r.name = "photos";
  r.ec = codec::ErasureScheme{4, 2};
  auto back = Decode<ArchiveCreateRequest>(ToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, "photos");
  ASSERT_TRUE(back->ec.has_value());
  EXPECT_EQ(back->ec->ToString(), "4+2");
  EXPECT_FALSE(back->copies.has_value());

  for (const char* bad :
       {R"({"name": "a/b"})", R"({"name": ""})", R"({"copies": 2})",
        R"({"name": "x", "copies": 0})", R"({"name": "x", "ec": "4-2"})",
        R"({"name": "x", "copies": 2, "ec": "4+2"})", R"([1])", R"({"name": 7})"}) {
    auto d = Decode<ArchiveCreateRequest>(Json::parse(bad));
    EXPECT_FALSE(d.ok()) << bad;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(ArchiveApiTest, MountRequestNeedsAnAbsoluteMountpoint) {
  ArchiveMountRequest r;
  r.name = "photos";
  r.mountpoint = "/mnt/photos";
  r.allow_other = true;
  r.spool_bytes = 8 << 20;
  auto back = Decode<ArchiveMountRequest>(ToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mountpoint, "/mnt/photos");
  EXPECT_TRUE(back->allow_other);
  EXPECT_EQ(back->spool_bytes, 8u << 20);
  EXPECT_FALSE(Decode<ArchiveMountRequest>(Json{{"name", "p"}, {"spool_bytes", 10}}).ok());
  auto relative = Decode<ArchiveMountRequest>(Json{{"name", "p"}, {"mountpoint", "mnt"}});
  ASSERT_FALSE(relative.ok());
  EXPECT_NE(relative.status().message().find("mountpoint"), std::string::npos);
}

TEST(ArchiveApiTest, ArchiveListRoundTripsWithNulls) {
  std::vector<ArchiveInfo> list(2);
  list[0].name = "a";
  list[0].versions = 3;
  list[0].latest = "ab12";
  list[0].copies = 2;
  list[0].files = 10;
  list[0].bytes = 1 << 20;
  list[1].name = "b";
  list[1].ec = "4+2";
  list[1].mountpoint = "/mnt/b";
  list[1].spooled_bytes = 5;
  Json j = ToJson(list);
  EXPECT_TRUE(j[0]["mountpoint"].is_null());
  EXPECT_TRUE(j[0]["ec"].is_null());
  auto back = Decode<std::vector<ArchiveInfo>>(Json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].versions, 3u);
  EXPECT_FALSE((*back)[0].mountpoint.has_value());
  EXPECT_EQ((*back)[1].mountpoint, "/mnt/b");
  EXPECT_EQ((*back)[1].ec, "4+2");
  EXPECT_FALSE(Decode<std::vector<ArchiveInfo>>(Json{{"name", "x"}}).ok());
  EXPECT_FALSE(Decode<std::vector<ArchiveInfo>>(Json::parse(R"([{"name":"x","files":-1}])")).ok());
}

}  // namespace
}  // namespace cairn::api
