// File-system helpers with the durability cairn's invariants need (docs/architecture.md
// "Invariants and where they hold": crash safety).
// Thread-safety: stateless; safe to call concurrently on different paths.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "cairn/base/bytes.h"

namespace cairn::env {

// Writes `data` to `path` atomically and durably: temp file in the same directory, write,
// fsync, rename over `path`, fsync the directory. `mode` is the file mode (e.g. 0600).
// Readers see either the old file or the complete new one, also after a crash.
// Errors: errno-mapped (RESOURCE_EXHAUSTED on ENOSPC, NOT_FOUND if the directory is missing).
absl::Status WriteFileAtomic(const std::string& path, ByteSpan data, uint32_t mode = 0644);

// Reads a whole file. NOT_FOUND if missing; RESOURCE_EXHAUSTED if larger than `max_bytes`.
absl::StatusOr<Bytes> ReadFile(const std::string& path, uint64_t max_bytes = 1ull << 30);
absl::StatusOr<std::string> ReadFileString(const std::string& path,
                                           uint64_t max_bytes = 1ull << 30);

// fsync(2) on a directory so that a rename or create inside it is durable.
absl::Status FsyncDir(const std::string& dir);

// mkdir -p with `mode` for created directories.
absl::Status MakeDirs(const std::string& dir, uint32_t mode = 0755);

// Fills `out` from the kernel CSPRNG (getrandom(2)). Never fails on Linux >= 3.17.
void RandomFill(uint8_t* out, size_t n);

}  // namespace cairn::env
