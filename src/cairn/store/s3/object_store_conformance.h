// The conformance suite every ObjectStore passes (the in-memory store in s3_test, the S3 store
// against s3rver in s3rver_test): what a storage peer relies on — bytes read back equal the
// bytes put, ranges, listings that miss and repeat nothing, NOT_FOUND / OUT_OF_RANGE where
// object_store.h says. Include in one test file and instantiate:
//   INSTANTIATE_TEST_SUITE_P(Memory, ObjectStoreConformance,
//                            ::testing::Values(StoreFactory{...}));
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>
#include <string>

#include "cairn/store/s3/object_store.h"

namespace cairn::store::s3 {

// A fresh, empty store for each test (e.g. the same bucket under a new prefix).
struct StoreFactory {
  std::string name;
  std::function<std::unique_ptr<ObjectStore>()> make;
};

inline void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

inline Bytes RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

class ObjectStoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(ObjectStoreConformance, PutThenRangesReadBackTheSameBytes) {
  const uint64_t seed = 42;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  Bytes data = RandomBytes(100'000, seed);
  ASSERT_TRUE(store_->Put("seg/00000001", data).ok());

  auto all = store_->GetRange("seg/00000001", 0, data.size());
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, data);

  auto mid = store_->GetRange("seg/00000001", 4096, 1000);
  ASSERT_TRUE(mid.ok()) << mid.status();
  EXPECT_EQ(*mid, Bytes(data.begin() + 4096, data.begin() + 5096));

  auto tail = store_->GetRange("seg/00000001", data.size() - 10, 1000);  // past the end
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, Bytes(data.end() - 10, data.end()));

  auto none = store_->GetRange("seg/00000001", 7, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_EQ(store_->GetRange("seg/00000001", data.size(), 1).status().code(),
            absl::StatusCode::kOutOfRange);

  auto head = store_->Head("seg/00000001");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->size, data.size());
  EXPECT_FALSE(head->etag.empty());
}

TEST_P(ObjectStoreConformance, PutReplacesTheWholeObject) {
  ASSERT_TRUE(store_->Put("k", RandomBytes(5000, 1)).ok());
  Bytes second = RandomBytes(300, 2);
  ASSERT_TRUE(store_->Put("k", second).ok());
  auto got = store_->GetRange("k", 0, 10'000);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, second);
}

TEST_P(ObjectStoreConformance, EmptyObject) {
  ASSERT_TRUE(store_->Put("empty", Bytes{}).ok());
  auto head = store_->Head("empty");
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->size, 0u);
  EXPECT_EQ(store_->GetRange("empty", 0, 1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_P(ObjectStoreConformance, MissingKeysAreNotFound) {
  EXPECT_EQ(store_->Head("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRange("nope", 0, 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete("nope").ok());  // S3: deleting a missing key succeeds
}

TEST_P(ObjectStoreConformance, DeleteRemoves) {
  ASSERT_TRUE(store_->Put("a", RandomBytes(10, 3)).ok());
  ASSERT_TRUE(store_->Put("b", RandomBytes(10, 4)).ok());
  ASSERT_TRUE(store_->Delete("a").ok());
  EXPECT_EQ(store_->Head("a").status().code(), absl::StatusCode::kNotFound);
  auto all = ListAll(store_.get(), "");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].key, "b");
}

TEST_P(ObjectStoreConformance, ListingPagesMissAndRepeatNothing) {
  std::vector<std::string> want;
  for (int i = 0; i < 23; ++i) {
    std::string key = "seg/" + std::to_string(1000 + i);
    ASSERT_TRUE(store_->Put(key, RandomBytes(static_cast<size_t>(i), i)).ok());
    want.push_back(key);
  }
  ASSERT_TRUE(store_->Put("registry/snapshot", RandomBytes(5, 9)).ok());
  ASSERT_TRUE(store_->Put("seg", RandomBytes(5, 9)).ok());  // "seg" but not "seg/"

  auto first = store_->List("seg/", "", 5);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->objects.size(), 5u);
  EXPECT_FALSE(first->next_token.empty());

  auto all = ListAll(store_.get(), "seg/", 5);  // 5 pages
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> got;
  for (size_t i = 0; i < all->size(); ++i) {
    got.push_back((*all)[i].key);
    EXPECT_EQ((*all)[i].size,
              static_cast<uint64_t>((*all)[i].key.back() - '0' + 10 * ((*all)[i].key[6] - '0')));
  }
  EXPECT_EQ(got, want);
}

TEST_P(ObjectStoreConformance, KeysWithReservedCharactersRoundTrip) {
  const std::string key = "odd dir/a+b=c&d%e~f,g;h\xc3\xa9.seg";
  Bytes data = RandomBytes(777, 5);
  ASSERT_TRUE(store_->Put(key, data).ok());
  auto got = store_->GetRange(key, 0, 777);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
  auto listed = ListAll(store_.get(), "odd dir/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, key);
  ASSERT_TRUE(store_->Delete(key).ok());
  EXPECT_EQ(store_->Head(key).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ObjectStoreConformance, PutFileUploadsTheFile) {
  auto fs = env::NewMemFileSystem();
  Bytes data = RandomBytes(300'000, 6);
  {
    auto f = fs->Open("/seg.dat", env::OpenMode::kCreate);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(data).ok());
  }
  ASSERT_TRUE(store_->PutFile("seg/file", fs.get(), "/seg.dat").ok());
  auto got = store_->GetRange("seg/file", 0, data.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, data);
  EXPECT_EQ(store_->PutFile("seg/none", fs.get(), "/missing").code(), absl::StatusCode::kNotFound);
}

TEST_P(ObjectStoreConformance, BadKeysAreInvalidArguments) {
  EXPECT_EQ(store_->Put("", Bytes{1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("/abs", Bytes{1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Head(std::string(1025, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->List("", "", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace cairn::store::s3
