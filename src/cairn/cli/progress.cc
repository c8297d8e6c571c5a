#include "cairn/cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cairn/api/responses.h"
#include "cairn/base/bytes.h"
#include "cairn/cli/output.h"

namespace cairn::cli {
namespace {

std::string FormatEta(double seconds) {
  if (!(seconds >= 0) || seconds > 100 * 3600) return "--:--";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buf;
}

}  // namespace

std::string RenderProgressLine(const nlohmann::json& progress, double rate) {
  // Check / repair: chunks examined, bytes read.
  if (absl::StatusOr<api::ChunkProgress> c = api::Decode<api::ChunkProgress>(progress); c.ok()) {
    const uint64_t total = c->chunks_total, done = c->chunks_done;
    std::string line = total == 0 ? std::string("[collecting chunks]  ") : "";
    if (total > 0) {
      double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
      const int kWidth = 20;
      int filled = static_cast<int>(frac * kWidth);
      char pct[16];
      std::snprintf(pct, sizeof pct, "%5.1f%%", frac * 100);
      line = absl::StrCat("[", std::string(filled, '#'), std::string(kWidth - filled, '-'), "] ",
                          pct, "  ");
    }
    absl::StrAppend(&line, done, "/", total, " chunks  ", FormatSize(c->bytes_done), " read  ",
                    FormatRate(static_cast<uint64_t>(rate), 1.0));
    return line;
  }
  absl::StatusOr<api::TransferProgress> t = api::Decode<api::TransferProgress>(progress);
  if (!t.ok()) return "[progress not readable]";
  const uint64_t files_total = t->files_total, bytes_total = t->bytes_total;
  const uint64_t files_done = t->files_done, bytes_done = t->bytes_done;
  const bool scan_done = t->scan_done;
  std::string line;
  if (scan_done && bytes_total > 0) {
    double frac = std::min(1.0, static_cast<double>(bytes_done) / static_cast<double>(bytes_total));
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", frac * 100);
    const int kWidth = 20;
    int filled = static_cast<int>(frac * kWidth);
    line = absl::StrCat("[", std::string(filled, '#'), std::string(kWidth - filled, '-'), "] ", pct,
                        "  ");
  } else if (!scan_done) {
    line = "[scanning]  ";
  }
  absl::StrAppend(&line, FormatSize(bytes_done));
  if (scan_done || bytes_total > 0) absl::StrAppend(&line, " / ", FormatSize(bytes_total));
  absl::StrAppend(&line, "  ", files_done);
  if (scan_done || files_total > 0) absl::StrAppend(&line, "/", files_total);
  absl::StrAppend(&line, " files  ", FormatRate(static_cast<uint64_t>(rate), 1.0));
  if (scan_done && bytes_total > 0 && rate > 0) {
    double left = static_cast<double>(bytes_total > bytes_done ? bytes_total - bytes_done : 0);
    absl::StrAppend(&line, "  ETA ", FormatEta(left / rate));
  }
  return line;
}

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled) {}

ProgressBar::~ProgressBar() { Finish(); }

bool ProgressBar::StderrIsTerminal() { return ::isatty(STDERR_FILENO) == 1; }

void ProgressBar::Update(const nlohmann::json& progress) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  // Both progress shapes count bytes_done.
  absl::StatusOr<api::TransferProgress> t = api::Decode<api::TransferProgress>(progress);
  const uint64_t bytes = t.ok() ? t->bytes_done : last_bytes_;
  if (have_sample_) {
    double dt = std::chrono::duration<double>(now - last_time_).count();
    if (dt > 0 && bytes >= last_bytes_) {
      double sample = static_cast<double>(bytes - last_bytes_) / dt;
      rate_ = rate_ == 0 ? sample : 0.7 * rate_ + 0.3 * sample;
    }
  }
  have_sample_ = true;
  last_time_ = now;
  last_bytes_ = bytes;
  std::string line = RenderProgressLine(progress, rate_);
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(stderr, "\r\x1b[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace cairn::cli
