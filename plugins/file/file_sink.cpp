// file sink: one JSON record per line (the wire format of docs/wire-format.md), to a file or to
// standard output ("-"). A batch is acknowledged after it was written (and fsync'ed when
// `fsync: true`).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "webmon/common/wire.hpp"
#include "webmon/sdk/sdk.hpp"

namespace webmon::plugins::file {
namespace {

using sdk::OptionSpec;
using sdk::OptionType;

struct Options {
  std::string path;
  bool append = true;
  bool fsync = false;
};

// Declared once: the host checks the types and fills the defaults; load_options() binds.
constexpr OptionSpec kOptions[] = {
    {.name = "path",
     .type = OptionType::string,
     .default_value = nullptr,
     .required = true,
     .description = "output file, or - for standard output",
     .assign = sdk::bind<&Options::path>()},
    {.name = "append",
     .type = OptionType::boolean,
     .default_value = "true",
     .required = false,
     .description = "append to an existing file (false truncates it at start)",
     .assign = sdk::bind<&Options::append>()},
    {.name = "fsync",
     .type = OptionType::boolean,
     .default_value = "false",
     .required = false,
     .description = "fsync after every batch before acknowledging it (durable, slower)",
     .assign = sdk::bind<&Options::fsync>()},
};

class FileSink final : public sdk::Sink {
 public:
  FileSink(const sdk::ConfigNode& config, sdk::Context& /*ctx*/)
      : o_(sdk::load_options<Options>(config, kOptions)) {
    if (o_.path.empty()) {
      config.find("path")->fail("option 'path' must not be empty (use - for standard output)");
    }
  }
  ~FileSink() override {
    if (fd_ > 2) {
      ::close(fd_);
    }
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

 protected:
  sdk::Status on_start() override {
    if (o_.path == "-") {
      fd_ = STDOUT_FILENO;
      return sdk::Status::ok();
    }
    const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (o_.append ? O_APPEND : O_TRUNC);
    fd_ = ::open(o_.path.c_str(), flags, 0644);
    if (fd_ < 0) {
      return sdk::Status::error("cannot open '" + o_.path +
                                "' for writing: " + std::strerror(errno));
    }
    return sdk::Status::ok();
  }

  sdk::Status on_write(const sdk::Batch& batch, sdk::Ack ack) override {
    buffer_.clear();
    for (const auto& r : batch.records) {
      common::append_json(r, buffer_);
      buffer_ += '\n';
    }
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return sdk::Status::error("writing '" + o_.path + "' failed: " + std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
    if (o_.fsync && fd_ > 2 && ::fsync(fd_) != 0) {
      return sdk::Status::error("fsync of '" + o_.path + "' failed: " + std::strerror(errno));
    }
    ack.resolve(sdk::AckStatus::delivered);
    return sdk::Status::ok();
  }

 private:
  Options o_;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace
}  // namespace webmon::plugins::file

WEBMON_PLUGIN_SINK(webmon::plugins::file::FileSink, "file", "0.1.0",
                   "Writes records as JSON lines (the Kafka wire format) to a file or stdout",
                   webmon::plugins::file::kOptions, webmon::sdk::KindFacts{})
