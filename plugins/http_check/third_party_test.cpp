// http_check against third-party servers on 127.0.0.1, beside the in-process ones of
// http_check_test.cpp: go-httpbin (an httpbin implementation in Go, built into
// ~/.cache/webmon/bin by scripts/bootstrap) and Debian's nginx with gzip, brotli
// (libnginx-mod-http-brotli-filter) and pre-compressed gzip and zstd files. Records are compared
// with what curl reports for the same URLs, and compressed sizes with the files nginx serves.
// A test is skipped, naming what to install, when its server is missing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "http_check.hpp"
#include "pipeline_runner.hpp"
#include "test_servers.hpp"

namespace webmon::plugins::http_check {
namespace {

using nlohmann::json;
using webmon::testing::TempDir;
using namespace std::chrono_literals;
namespace t = webmon::plugins::http_check::testing;

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

std::string target(const std::string& name, const std::string& url, const std::string& more = "") {
  return "      - { name: " + quoted(name) + ", url: " + quoted(url) +
         (more.empty() ? "" : ", " + more) + " }\n";
}

// Checks each target once through the real host (http_check -> file sink); records by target.
std::map<std::string, json> check_once(const std::string& targets) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  const std::string yaml =
      "sources:\n  checks:\n    plugin: http_check\n    proxy: \"\"\n"
      "    once: true\n    targets:\n" +
      targets + "sinks:\n  out:\n    plugin: file\n    inputs: [checks]\n" +
      "    path: " + quoted(out) + "\n";
  const auto run = webmon::testing::run_pipeline(yaml);
  EXPECT_EQ(run.config_error, "");
  EXPECT_EQ(run.exit_code, 0);
  std::map<std::string, json> by_target;
  for (const auto& line : webmon::testing::lines(webmon::testing::read_file(out))) {
    json r = json::parse(line);
    by_target[r["target"].get<std::string>()] = r;
  }
  return by_target;
}

// What curl reports for a URL: status, decoded body, bytes downloaded, redirects, times.
struct CurlResult {
  long status = 0;
  std::string body;
  long long size_download = 0;
  int redirects = 0;
  double starttransfer = 0;
  double pretransfer = 0;
};

CurlResult curl(const std::string& url, const std::vector<std::string>& extra = {}) {
  TempDir dir;
  const std::string body = dir.path() + "/body";
  std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-L", "--max-redirs", "10", "--noproxy",
                                   "*", "-o", body, "-w",
                                   "%{http_code} %{size_download} %{num_redirects} "
                                   "%{time_pretransfer} %{time_starttransfer}",
                                   // http_check's default, so that echoed requests match
                                   "-A", "webmon-http-check/0.1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(url);
  const auto p = webmon::testing::run_process(argv, 60s);
  CurlResult r;
  std::istringstream in(p.out);
  in >> r.status >> r.size_download >> r.redirects >> r.pretransfer >> r.starttransfer;
  r.body = webmon::testing::read_file(body);
  return r;
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string go_httpbin_path() {
  const char* cache = std::getenv("WEBMON_CACHE");
  const char* home = std::getenv("HOME");
  const std::string dir = cache != nullptr
                              ? std::string(cache)
                              : std::string(home != nullptr ? home : "") + "/.cache/webmon";
  return dir + "/bin/go-httpbin";
}

bool wait_for_port(int port) {
  for (int i = 0; i < 400; ++i) {
    if (t::port_open(port)) {
      return true;
    }
    std::this_thread::sleep_for(25ms);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// go-httpbin

class http_check_go_httpbin : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!executable(go_httpbin_path()) || !executable("/usr/bin/curl")) {
      return;
    }
    dir_ = new TempDir();
    port_ = t::closed_port();
    server_ = new webmon::testing::Child(
        {go_httpbin_path(), "-host", "127.0.0.1", "-port", std::to_string(port_)},
        dir_->path() + "/httpbin.out", dir_->path() + "/httpbin.err");
    up_ = wait_for_port(port_);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) {
      GTEST_SKIP() << "go-httpbin (" << go_httpbin_path()
                   << ") or curl missing: run scripts/bootstrap";
    }
    ASSERT_TRUE(up_) << webmon::testing::read_file(dir_->path() + "/httpbin.err");
  }
  static std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  static TempDir* dir_;
  static webmon::testing::Child* server_;
  static int port_;
  static bool up_;
};
TempDir* http_check_go_httpbin::dir_ = nullptr;
webmon::testing::Child* http_check_go_httpbin::server_ = nullptr;
int http_check_go_httpbin::port_ = 0;
bool http_check_go_httpbin::up_ = false;

TEST_F(http_check_go_httpbin, RecordsAgreeWithCurl) {
  // path, extra target options, curl arguments beyond -sL --compressed
  struct Case {
    std::string name;
    std::string path;
    std::string options;
    std::vector<std::string> curl_args;
  };
  const std::vector<Case> cases = {
      {"get", "/get", "", {}},
      {"status_418", "/status/418", "expect_status: [418]", {}},
      {"status_503", "/status/503", "", {}},
      {"redirect_3", "/redirect/3", "", {}},
      {"absolute_redirect_2", "/absolute-redirect/2", "", {}},
      {"relative_redirect_2", "/relative-redirect/2", "", {}},
      {"bytes", "/bytes/4096", "", {}},
      {"stream_bytes", "/stream-bytes/5000?chunk_size=700", "", {}},
      {"html", "/html", "body_regex: 'Herman Melville'", {}},
      {"gzip", "/gzip", "body_regex: '\"gzipped\": true'", {}},
      {"deflate", "/deflate", "body_regex: '\"deflated\": true'", {}},
      {"basic_auth",
       "/basic-auth/alice/s3cret",
       "username: alice, password: s3cret",
       {"-u", "alice:s3cret"}},
      {"basic_auth_wrong",
       "/basic-auth/alice/s3cret",
       "username: alice, password: nope",
       {"-u", "alice:nope"}},
      {"post", "/post", "method: POST, body: 'a=1'", {"-d", "a=1"}},
  };
  std::string targets;
  for (const auto& c : cases) {
    targets += target(c.name, url(c.path), c.options);
  }
  const auto records = check_once(targets);
  ASSERT_EQ(records.size(), cases.size());
  for (const auto& c : cases) {
    const json& r = records.at(c.name);
    std::vector<std::string> args = {"--compressed"};
    args.insert(args.end(), c.curl_args.begin(), c.curl_args.end());
    const CurlResult expected = curl(url(c.path), args);
    ASSERT_GT(expected.status, 0) << c.name << ": curl failed";
    EXPECT_EQ(r["status_code"], expected.status) << c.name << ": " << r;
    EXPECT_EQ(r["redirects"], expected.redirects) << c.name << ": " << r;
    // Decoded body size: what curl --compressed writes; bytes on the wire: curl's
    // size_download. (/bytes and /stream-bytes are random but of a fixed length; the echoing
    // endpoints see the same request headers from both.)
    EXPECT_EQ(r["body_bytes"], expected.body.size()) << c.name << ": " << r;
    if (c.name == "gzip" || c.name == "deflate") {
      // Compressed echoes of two requests: equal in length, not always byte for byte, so
      // their compressed sizes may differ by a byte or two.
      EXPECT_NEAR(r["body_bytes_wire"].get<double>(), static_cast<double>(expected.size_download),
                  4.0)
          << c.name << ": " << r;
    } else {
      EXPECT_EQ(r["body_bytes_wire"], expected.size_download) << c.name << ": " << r;
    }
  }
  EXPECT_TRUE(records.at("get")["success"].get<bool>()) << records.at("get");
  EXPECT_EQ(records.at("status_503")["error"], "http_status");
  EXPECT_TRUE(records.at("basic_auth")["success"].get<bool>());
  EXPECT_EQ(records.at("basic_auth_wrong")["status_code"], 401);
  for (const char* compressed : {"gzip", "deflate"}) {
    const json& r = records.at(compressed);
    EXPECT_TRUE(r["success"].get<bool>()) << r;
    EXPECT_EQ(r["regex_matched"], true) << r;
    EXPECT_LT(r["body_bytes_wire"].get<std::int64_t>(), r["body_bytes"].get<std::int64_t>()) << r;
  }
  // By default http_check asks for every encoding its libcurl decodes, as a browser asks for
  // what it can decode: go-httpbin echoes the request's Accept-Encoding.
  std::string all;
  for (const auto& e : supported_encodings()) {
    all += (all.empty() ? "" : ", ") + e;
  }
  const auto get = check_once(target("headers", url("/headers")) +
                              target("headers_gzip", url("/headers"), "accept_encoding: gzip"));
  EXPECT_NE(get.at("headers")["body_bytes"], 0);
  const json echoed = json::parse(curl(url("/headers"), {"-H", "Accept-Encoding: " + all}).body);
  ASSERT_TRUE(echoed["headers"].contains("Accept-Encoding")) << echoed;
  EXPECT_EQ(echoed["headers"]["Accept-Encoding"][0], all);
  const auto mine = check_once(
      target("echo", url("/headers"), "body_regex: '\"Accept-Encoding\": \\[\\s*\"" + all + "\"'"));
  EXPECT_TRUE(mine.at("echo")["success"].get<bool>()) << mine.at("echo");
}

TEST_F(http_check_go_httpbin, ServerCompressesUnaskedAndRedirectHopsFail) {
  const std::string closed = "http://127.0.0.1:" + std::to_string(t::closed_port()) + "/";
  const auto records = check_once(
      // /gzip compresses whatever the client asked for: still decoded before body_regex.
      target("unasked", url("/gzip"),
             "accept_encoding: identity, body_regex: '\"gzipped\": true'") +
      target("to_invalid", url("/redirect-to?url=http://host.invalid/")) +
      target("to_closed", url("/redirect-to?url=" + closed)) + target("delay", url("/delay/0.2")));
  const json& unasked = records.at("unasked");
  EXPECT_TRUE(unasked["success"].get<bool>()) << unasked;
  EXPECT_EQ(unasked["regex_matched"], true);
  const json& to_invalid = records.at("to_invalid");
  EXPECT_EQ(to_invalid["error"], "dns") << to_invalid;
  EXPECT_TRUE(to_invalid["status_code"].is_null());
  EXPECT_EQ(to_invalid["failed_url"], "http://host.invalid/");
  EXPECT_EQ(to_invalid["redirects"], 1);
  const json& to_closed = records.at("to_closed");
  EXPECT_EQ(to_closed["error"], "connect") << to_closed;
  EXPECT_TRUE(to_closed["status_code"].is_null());
  EXPECT_EQ(to_closed["failed_url"], closed);
  // The server's 200 ms are in ttfb_ms, as curl sees them between pretransfer and
  // starttransfer.
  const json& delay = records.at("delay");
  EXPECT_TRUE(delay["success"].get<bool>()) << delay;
  EXPECT_GE(delay["ttfb_ms"].get<double>(), 200.0) << delay;
  const CurlResult c = curl(url("/delay/0.2"));
  EXPECT_GE((c.starttransfer - c.pretransfer) * 1000.0, 200.0);
}

// ---------------------------------------------------------------------------------------------
// nginx: gzip and brotli on the fly, pre-compressed gzip (gzip_static) and zstd files

class http_check_nginx_compression : public ::testing::Test {
 protected:
  static constexpr const char* kBrotli = "/usr/lib/nginx/modules/ngx_http_brotli_filter_module.so";

  static void SetUpTestSuite() {
    if (!executable("/usr/sbin/nginx") || !executable("/usr/bin/curl") ||
        !executable("/usr/bin/zstd") || ::access(kBrotli, R_OK) != 0) {
      return;
    }
    dir_ = new TempDir();
    const std::string& d = dir_->path();
    ::chmod(d.c_str(), 0755);  // nginx workers may run as another user
    ::mkdir((d + "/www").c_str(), 0755);
    // A compressible page of ~60 KB that ends in a marker.
    std::string page;
    for (int i = 0; page.size() < 60'000; ++i) {
      page += "<p>line " + std::to_string(i) + " of the webmon test page</p>\n";
    }
    page += "END-OF-PAGE";
    page_size_ = page.size();
    for (const char* name : {"page.txt", "static.txt", "zst.txt"}) {
      std::ofstream(d + "/www/" + name) << page;
    }
    webmon::testing::run_process({"/usr/bin/gzip", "-k", "-9", d + "/www/static.txt"});
    webmon::testing::run_process(
        {"/usr/bin/zstd", "-q", "-19", d + "/www/zst.txt", "-o", d + "/www/zst.txt.zst"});
    port_ = t::closed_port();
    std::string conf = "load_module " + std::string(kBrotli) +
                       ";\ndaemon off;\nmaster_process off;\npid " + d + "/nginx.pid;\n" +
                       "error_log " + d + "/error.log warn;\nevents { worker_connections 64; }\n" +
                       "http {\n  access_log off;\n  default_type text/plain;\n";
    for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
      conf += "  " + std::string(temp) + "_temp_path " + d + ";\n";
    }
    conf += "  server {\n    listen 127.0.0.1:" + std::to_string(port_) + ";\n    root " + d +
            "/www;\n" +
            "    location = /page.txt { gzip on; gzip_types text/plain; gzip_min_length 0;\n"
            "      brotli on; brotli_types text/plain; }\n"
            "    location = /static.txt { gzip_static on; }\n"
            "    location = /zst.txt { alias " +
            d +
            "/www/zst.txt.zst;\n"
            "      add_header Content-Encoding zstd; }\n  }\n}\n";
    const std::string conf_path = dir_->write("nginx.conf", conf);
    server_ = new webmon::testing::Child(
        {"/usr/sbin/nginx", "-p", d, "-c", conf_path, "-e", d + "/error.log"}, d + "/nginx.out",
        d + "/nginx.err");
    up_ = wait_for_port(port_);
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (server_ == nullptr) {
      GTEST_SKIP() << "nginx, its brotli module, zstd or curl missing: run scripts/bootstrap";
    }
    ASSERT_TRUE(up_) << webmon::testing::read_file(dir_->path() + "/error.log")
                     << webmon::testing::read_file(dir_->path() + "/nginx.err");
  }
  static std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  static long long file_size(const std::string& name) {
    struct stat st {};
    return ::stat((dir_->path() + "/www/" + name).c_str(), &st) == 0 ? st.st_size : -1;
  }

  static TempDir* dir_;
  static webmon::testing::Child* server_;
  static int port_;
  static bool up_;
  static std::size_t page_size_;
};
TempDir* http_check_nginx_compression::dir_ = nullptr;
webmon::testing::Child* http_check_nginx_compression::server_ = nullptr;
int http_check_nginx_compression::port_ = 0;
bool http_check_nginx_compression::up_ = false;
std::size_t http_check_nginx_compression::page_size_ = 0;

TEST_F(http_check_nginx_compression, DecodedBeforeBodyConditionsWithBothSizes) {
  const std::string marker = "body_regex: 'END-OF-PAGE$'";
  const auto records = check_once(
      target("default", url("/page.txt"), marker) +
      target("gzip", url("/page.txt"), marker + ", accept_encoding: gzip") +
      target("br", url("/page.txt"), marker + ", accept_encoding: br") +
      target("identity", url("/page.txt"), marker + ", accept_encoding: identity") +
      target("gzip_static", url("/static.txt"), marker + ", accept_encoding: gzip") +
      target("zstd_file", url("/zst.txt"), marker + ", accept_encoding: zstd") +
      // The user's own header wins over the option; the body is still decoded.
      target("own_header", url("/page.txt"), marker + ", headers: { Accept-Encoding: gzip }"));
  ASSERT_EQ(records.size(), 7U);
  for (const auto& [name, r] : records) {
    EXPECT_TRUE(r["success"].get<bool>()) << name << ": " << r;
    EXPECT_EQ(r["regex_matched"], true) << name;
    EXPECT_EQ(r["body_bytes"], page_size_) << name << ": " << r;
  }
  // Compressed on the wire; uncompressed when asked for identity.
  for (const char* name : {"default", "gzip", "br", "gzip_static", "zstd_file", "own_header"}) {
    EXPECT_LT(records.at(name)["body_bytes_wire"].get<std::int64_t>(),
              static_cast<std::int64_t>(page_size_) / 4)
        << name << ": " << records.at(name);
  }
  EXPECT_EQ(records.at("identity")["body_bytes_wire"], page_size_);
  // The pre-compressed files are the ground truth of the bytes on the wire.
  EXPECT_EQ(records.at("gzip_static")["body_bytes_wire"], file_size("static.txt.gz"));
  EXPECT_EQ(records.at("zstd_file")["body_bytes_wire"], file_size("zst.txt.zst"));
  // curl agrees on both sizes for each encoding.
  const std::map<std::string, std::string> asks = {
      {"gzip", "gzip"}, {"br", "br"}, {"identity", "identity"}};
  for (const auto& [name, encoding] : asks) {
    const CurlResult c =
        curl(url("/page.txt"), {"--compressed", "-H", "Accept-Encoding: " + encoding});
    EXPECT_EQ(c.body.size(), page_size_) << name;
    EXPECT_EQ(records.at(name)["body_bytes_wire"], c.size_download) << name;
  }
  const CurlResult z = curl(url("/zst.txt"), {"--compressed"});
  EXPECT_EQ(z.body.size(), page_size_);
  EXPECT_EQ(records.at("zstd_file")["body_bytes_wire"], z.size_download);
}

}  // namespace
}  // namespace webmon::plugins::http_check
