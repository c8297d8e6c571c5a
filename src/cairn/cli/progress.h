// A one-line progress display on stderr, redrawn with '\r' (percent, bytes done/total, files,
// MB/s, ETA). Only active when stderr is a terminal; otherwise every call is a no-op so that
// logs and pipes stay clean.
// Thread-safety: single-threaded.
#pragma once

#include <chrono>
#include <string>

#include "nlohmann/json.hpp"

namespace cairn::cli {

class ProgressBar {
 public:
  // `enabled` is usually StderrIsTerminal() && !json.
  explicit ProgressBar(bool enabled);
  ~ProgressBar();

  // Redraws from a job's "progress" object (files_total, bytes_total, scan_done, files_done,
  // bytes_done).
  void Update(const nlohmann::json& progress);
  // Clears the line (before the summary is printed).
  void Finish();

  static bool StderrIsTerminal();

 private:
  bool enabled_;
  bool drawn_ = false;
  // Rate: an exponential moving average of bytes_done deltas between updates, so that files
  // skipped as unchanged (counted at once) do not inflate it for the rest of the run.
  bool have_sample_ = false;
  std::chrono::steady_clock::time_point last_time_;
  uint64_t last_bytes_ = 0;
  double rate_ = 0;  // bytes per second
};

// The line Update() draws, without terminal control characters (exposed for tests).
// `rate` is in bytes per second.
std::string RenderProgressLine(const nlohmann::json& progress, double rate);

}  // namespace cairn::cli
