#include "cairn/daemon/bucket_status.h"

#include <gtest/gtest.h>

#include "cairn/store/s3/memory_object_store.h"

namespace cairn::daemon {
namespace {

TEST(BucketStatusTest, NullWithoutABucketAndUrlOnlyWithoutCounters) {
  EXPECT_FALSE(BucketStatusOf("", nullptr).has_value());
  EXPECT_FALSE(BucketCounters(nullptr).has_value());
  store::s3::MemoryObjectStore memory;
  nlohmann::json j = api::ToJson(*BucketStatusOf("s3://b/p", &memory));
  EXPECT_EQ(j["url"], "s3://b/p");
  EXPECT_FALSE(j.contains("requests"));
  EXPECT_FALSE(BucketCounters(&memory).has_value());
}

TEST(BucketStatusTest, CountsTheS3ClientsAttempts) {
  store::s3::S3Options o;
  // Port 1 on loopback: nothing listens, every attempt is refused at once.
  auto loc = store::s3::ParseS3Url("s3://cairn-test/peer4/", "http://127.0.0.1:1", "eu-west-1");
  ASSERT_TRUE(loc.ok()) << loc.status();
  o.location = *loc;
  o.credentials = {"AK", "SK", "", "test"};
  o.retry.max_attempts = 2;
  o.retry.initial_backoff = std::chrono::milliseconds(1);
  auto store = store::s3::S3ObjectStore::Create(o);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->Head("k").ok());

  nlohmann::json j = api::ToJson(*BucketStatusOf("s3://cairn-test/peer4/", store->get()));
  EXPECT_EQ(j["url"], "s3://cairn-test/peer4/");
  EXPECT_EQ(j["endpoint"], "http://127.0.0.1:1");
  EXPECT_EQ(j["region"], "eu-west-1");
  EXPECT_EQ(j["requests"]["head"], 2);
  EXPECT_EQ(j["requests"]["put"], 0);
  EXPECT_EQ(j["requests_total"], 2);
  EXPECT_EQ(j["retries"], 1);
  EXPECT_EQ(j["failures"], 1);
  EXPECT_EQ(j["errors"]["transport"], 2);
  EXPECT_EQ(j["errors_total"], 2);
  EXPECT_EQ(j["bytes_sent"], 0);
  EXPECT_EQ(j["bytes_received"], 0);
  ASSERT_TRUE(BucketCounters(store->get()).has_value());
  EXPECT_EQ(BucketCounters(store->get())->retries, 1u);
}

}  // namespace
}  // namespace cairn::daemon
