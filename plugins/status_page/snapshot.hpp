// The status page's history on disk: a compact binary snapshot of every target's state,
// written atomically (temporary file in the same directory, fsync, rename) so a crash leaves
// either the old or the new snapshot, never a torn one.
#pragma once

#include <stdexcept>
#include <string>

#include "model.hpp"

namespace webmon::plugins::status_page {

class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Serializes the model (format: see snapshot.cpp).
std::string encode_snapshot(const StatusModel& model);
/// Restores targets from `data` into `model`. Throws SnapshotError saying what is wrong.
/// Returns the number of targets restored.
std::size_t decode_snapshot(std::string_view data, StatusModel& model);

/// Writes `data` to `path` atomically. Throws SnapshotError naming the file and the reason.
void write_file_atomically(const std::string& path, std::string_view data);
/// Reads the whole file; returns false when it does not exist. Throws SnapshotError on
/// other failures.
bool read_file(const std::string& path, std::string& out);

}  // namespace webmon::plugins::status_page
