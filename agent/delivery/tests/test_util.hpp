// Shared helpers of the delivery tests: a temporary directory and http_check-like records.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "webmon/sdk/record.hpp"

namespace webmon::delivery::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its content at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != 0 ? base : "/tmp") + "/webmon-delivery-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : throw std::runtime_error("mkdtemp failed");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// An http_check-like record (22 fields, one label) whose id is "rec-<n>".
inline sdk::Record check_record(std::uint64_t n) {
  sdk::Record r;
  r.kind = "http_check";
  r.id = "rec-" + std::to_string(n);
  r.time = sdk::Timestamp{1'764'000'000'000'000LL + static_cast<std::int64_t>(n)};
  const std::string target = "target-" + std::to_string(n % 1000);
  r.add("target", target);
  r.add("url", "https://" + target + ".example/");
  r.add("method", std::string("GET"));
  r.add("agent", std::string("bench-agent"));
  r.add("success", n % 7 != 0);
  r.add("status_code", std::int64_t{n % 7 != 0 ? 200 : 503});
  r.add("error", sdk::Value());
  r.add("error_message", sdk::Value());
  r.add("response_time_ms", 104.217 + static_cast<double>(n % 100));
  r.add("dns_ms", 0.27);
  r.add("connect_ms", 1.864);
  r.add("tls_ms", 8.564);
  r.add("ttfb_ms", 90.939);
  r.add("transfer_ms", 2.573);
  r.add("body_bytes", std::int64_t{93130});
  r.add("http_version", std::string("1.1"));
  r.add("remote_ip", std::string("192.0.2.42"));
  r.add("redirects", std::int64_t{0});
  r.add("regex_matched", sdk::Value());
  r.add("tls_cert_not_after", sdk::Timestamp{r.time.micros + 7'776'000'000'000LL});
  r.add("tls_cert_issuer", std::string("CN=Example Test CA"));
  r.add("lateness_ms", 0.162);
  r.labels = {{"region", "eu-west"}};
  return r;
}

inline std::vector<sdk::Record> check_records(std::uint64_t first, std::size_t count) {
  std::vector<sdk::Record> v;
  v.reserve(count);
  for (std::size_t i = 0; i < count; ++i) v.push_back(check_record(first + i));
  return v;
}

/// Segment files of a buffer directory, in id order.
inline std::vector<std::filesystem::path> segment_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> v;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".wmdb") v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

/// Bytes of the segment files; a file deleted while listing (by a concurrent reader's
/// acknowledgement) counts as 0.
inline std::uint64_t segment_bytes(const std::filesystem::path& dir) {
  std::uint64_t n = 0;
  for (const auto& p : segment_files(dir)) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(p, ec);
    if (!ec) n += size;
  }
  return n;
}

}  // namespace webmon::delivery::test
