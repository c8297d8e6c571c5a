// Test-only helpers for daemon/ and cli/ tests: a temporary directory removed on destruction,
// and a seeded random generator that prints its seed when a test fails.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace cairn::daemon::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "cairn-daemon-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// std::mt19937_64 seeded from the clock (or $CAIRN_TEST_SEED); the seed is attached to every
// failure message of the enclosing scope.
class SeededRandom {
 public:
  SeededRandom()
      : seed_(getenv("CAIRN_TEST_SEED") ? std::strtoull(getenv("CAIRN_TEST_SEED"), nullptr, 10)
                                        : std::random_device{}()),
        trace_(__FILE__, __LINE__, "CAIRN_TEST_SEED=" + std::to_string(seed_)),
        rng_(seed_) {}
  std::mt19937_64& rng() { return rng_; }
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  ::testing::ScopedTrace trace_;
  std::mt19937_64 rng_;
};

}  // namespace cairn::daemon::testing
