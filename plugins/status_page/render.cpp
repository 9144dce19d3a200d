// HTML, SVG and JSON rendering of the status page (see render.hpp).
#include "render.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

namespace webmon::plugins::status_page {
namespace {

constexpr int kSparkWidth = 120;
constexpr int kSparkHeight = 24;
constexpr int kBarHeight = 20;

void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// Fixed-point with `decimals` digits (no locale, no exponent).
void append_fixed(std::string& out, double v, int decimals) {
  char buf[48];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  out.append(buf, r.ptr);
}

/// Uptime percent as shown: 100%, 99.95%, 0%. Never rounds up to 100 unless it is 100.
void append_percent(std::string& out, double pct) {
  if (pct >= 100.0) {
    out += "100";
  } else {
    const double floored = std::floor(pct * 100.0) / 100.0;
    append_fixed(out, floored, 2);
  }
  out += '%';
}

const char* bar_class(const std::optional<double>& pct) {
  if (!pct) {
    return "n";
  }
  if (*pct >= 100.0) {
    return "u";
  }
  return *pct <= 0.0 ? "d" : "p";
}

void append_sparkline(std::string& out, const std::vector<Sample>& samples) {
  out += "<svg class=\"spark\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\" role=\"img\"";
  if (samples.empty()) {
    out += " aria-label=\"no checks yet\"></svg>";
    return;
  }
  float lo = samples[0].ms;
  float hi = samples[0].ms;
  for (const auto& s : samples) {
    lo = std::min(lo, s.ms);
    hi = std::max(hi, s.ms);
  }
  out += " aria-label=\"response time of the last ";
  append_int(out, static_cast<std::int64_t>(samples.size()));
  out += " checks: ";
  append_fixed(out, lo, 1);
  out += " to ";
  append_fixed(out, hi, 1);
  out += " ms\">";
  const double span = hi > lo ? static_cast<double>(hi - lo) : 1.0;
  const std::size_t n = samples.size();
  auto x_of = [&](std::size_t i) {
    return n == 1 ? kSparkWidth / 2
                  : 1 + static_cast<int>(std::lround(static_cast<double>(i) * (kSparkWidth - 2) /
                                                     static_cast<double>(n - 1)));
  };
  auto y_of = [&](float ms) {
    return kSparkHeight - 2 - static_cast<int>(std::lround((ms - lo) / span * (kSparkHeight - 4)));
  };
  out += "<polyline points=\"";
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      out += ' ';
    }
    append_int(out, x_of(i));
    out += ',';
    append_int(out, y_of(samples[i].ms));
  }
  out += "\"/>";
  std::string failed;
  for (std::size_t i = 0; i < n; ++i) {
    if (!samples[i].ok) {
      failed += 'M';
      append_int(failed, x_of(i));
      failed += ' ';
      append_int(failed, y_of(samples[i].ms));
      failed += "h0";
    }
  }
  if (!failed.empty()) {
    out += "<path class=\"f\" d=\"";
    out += failed;
    out += "\"/>";
  }
  out += "</svg>";
}

void append_bar(std::string& out, const TargetView& t) {
  const std::size_t n = t.bar.size();
  const int width = static_cast<int>(n) * 5;
  out += "<svg class=\"bar\" width=\"";
  append_int(out, width);
  out += "\" height=\"20\" viewBox=\"0 0 ";
  append_int(out, width);
  out += " 20\" role=\"img\" aria-label=\"uptime per hour, last ";
  append_int(out, static_cast<std::int64_t>(n));
  out += " hours\">";
  // One path per colour: "u" all up, "p" partly down, "d" all down, "n" no checks.
  for (const char* cls : {"u", "p", "d", "n"}) {
    std::string d;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::string_view(bar_class(t.bar[i])) == cls) {
        d += 'M';
        append_int(d, static_cast<std::int64_t>(i) * 5);
        d += " 0h4v";
        append_int(d, kBarHeight);
        d += "h-4z";
      }
    }
    if (!d.empty()) {
      out += "<path class=\"";
      out += cls;
      out += "\" d=\"";
      out += d;
      out += "\"/>";
    }
  }
  out += "</svg>";
}

constexpr std::string_view kStyle =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}"
    "header{padding:16px 24px;background:#fff;border-bottom:1px solid #d0d7de}"
    "h1{margin:0;font-size:22px}h2{font-size:16px;margin:20px 0 6px}"
    "main{padding:0 24px 24px}.summary{margin:6px 0 0;font-weight:600}"
    ".summary.ok{color:#1a7f37}.summary.bad{color:#cf222e}"
    "table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}"
    "th,td{padding:6px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:middle}"
    "th{font-size:12px;color:#57606a;font-weight:600;white-space:nowrap}"
    ".response,.history,.uptime-24h,.uptime-7d,.cert{white-space:nowrap}.name{min-width:180px}"
    "small,.url{color:#57606a;font-size:12px}.url{word-break:break-all}"
    ".state small{white-space:nowrap}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}"
    ".badge.up{background:#1a7f37}.badge.down{background:#cf222e}"
    ".badge.flapping{background:#bf8700}.badge.stale{background:#6e7781}"
    ".spark polyline{fill:none;stroke:#0969da;stroke-width:1.5}"
    ".spark .f{stroke:#cf222e;stroke-width:4;stroke-linecap:round}"
    ".bar .u{fill:#2da44e}.bar .p{fill:#d4a72c}.bar .d{fill:#cf222e}.bar .n{fill:#d0d7de}"
    ".cert.warn{color:#bf8700;font-weight:600}.cert.expired{color:#cf222e;font-weight:600}"
    ".last-error .class{font-weight:600;color:#cf222e}"
    "footer{padding:0 24px 24px;color:#57606a;font-size:12px}";

}  // namespace

void append_html_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7f) {
        out += "\\u00";
        out += kHex[c >> 4U];
        out += kHex[c & 0xFU];
      } else if (c == '<') {
        out += "\\u003c";  // safe to embed anywhere
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // Validate one UTF-8 sequence.
    std::size_t len = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0U) == 0xC0U) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0U) == 0xE0U) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8U) == 0xF0U) {
      len = 4;
      min = 0x10000;
    }
    bool valid = len != 0 && i + len <= s.size();
    std::uint32_t cp = len == 2 ? (c & 0x1FU) : len == 3 ? (c & 0x0FU) : (c & 0x07U);
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      valid = (cc & 0xC0U) == 0x80U;
      cp = (cp << 6U) | (cc & 0x3FU);
    }
    valid = valid && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
}

std::string format_time(std::int64_t time_us) {
  const auto secs = static_cast<std::time_t>(time_us >= 0 ? time_us / 1'000'000
                                                          : (time_us - 999'999) / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d UTC", (tm.tm_year + 1900) % 10000,
                (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                tm.tm_sec % 100);
  return buf;
}

std::vector<Group> group_targets(std::vector<TargetView> targets, const PageOptions& options) {
  std::sort(targets.begin(), targets.end(),
            [](const TargetView& a, const TargetView& b) { return a.name < b.name; });
  std::vector<Group> out;
  if (!options.grouped) {
    out.push_back(Group{"", std::move(targets)});
    return out;
  }
  std::map<std::string, std::vector<TargetView>, std::less<>> by_group;
  for (auto& t : targets) {
    by_group[t.group.empty() ? options.default_group : t.group].push_back(std::move(t));
  }
  for (const auto& name : options.groups) {
    auto it = by_group.find(name);
    if (it != by_group.end()) {
      out.push_back(Group{name, std::move(it->second)});
      by_group.erase(it);
    }
  }
  std::vector<TargetView> fallback;
  if (auto it = by_group.find(options.default_group); it != by_group.end()) {
    fallback = std::move(it->second);
    by_group.erase(it);
  }
  for (auto& [name, list] : by_group) {
    out.push_back(Group{name, std::move(list)});
  }
  if (!fallback.empty()) {
    out.push_back(Group{options.default_group, std::move(fallback)});
  }
  return out;
}

std::string render_html(const std::vector<Group>& groups, std::int64_t now_us,
                        const PageOptions& options) {
  std::size_t total = 0;
  std::size_t counts[4] = {0, 0, 0, 0};
  std::size_t cert_warnings = 0;
  for (const auto& g : groups) {
    total += g.targets.size();
    for (const auto& t : g.targets) {
      ++counts[static_cast<int>(t.state)];
      if (t.cert_days_left && *t.cert_days_left < options.cert_warn_days) {
        ++cert_warnings;
      }
    }
  }
  std::string out;
  out.reserve(4096 + total * 1800);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">";
  if (options.refresh_seconds > 0) {
    out += "<meta http-equiv=\"refresh\" content=\"";
    append_int(out, options.refresh_seconds);
    out += "\">";
  }
  out += "<title>";
  append_html_escaped(out, options.title);
  out += "</title><style>";
  out += kStyle;
  out += "</style></head><body><header><h1>";
  append_html_escaped(out, options.title);
  out += "</h1>";
  const std::size_t problems = counts[1] + counts[2] + counts[3];
  out += problems == 0 && total > 0 ? "<p class=\"summary ok\">" : "<p class=\"summary bad\">";
  if (total == 0) {
    out += "No checks received yet.";
  } else if (problems == 0) {
    out += total == 1 ? "The target is up." : "All ";
    if (total > 1) {
      append_int(out, static_cast<std::int64_t>(total));
      out += " targets are up.";
    }
  } else {
    bool first = true;
    for (int s = 1; s < 4; ++s) {
      if (counts[s] == 0) {
        continue;
      }
      out += first ? "" : ", ";
      first = false;
      append_int(out, static_cast<std::int64_t>(counts[s]));
      out += ' ';
      out += to_string(static_cast<State>(s));
    }
    out += " of ";
    append_int(out, static_cast<std::int64_t>(total));
    out += " targets.";
  }
  if (cert_warnings > 0) {
    out += " ";
    append_int(out, static_cast<std::int64_t>(cert_warnings));
    out += cert_warnings == 1 ? " certificate expires" : " certificates expire";
    out += " within ";
    append_int(out, options.cert_warn_days);
    out += " days.";
  }
  out += "</p></header><main>";
  for (const auto& g : groups) {
    out += "<section class=\"group\">";
    if (options.grouped) {
      out += "<h2>";
      append_html_escaped(out, g.name);
      out += "</h2>";
    }
    out +=
        "<table><thead><tr><th>Target</th><th>State</th><th>Uptime 24 h</th>"
        "<th>Uptime 7 d</th><th>Response time</th><th>Last ";
    append_int(out, g.targets.empty() ? 0 : static_cast<std::int64_t>(g.targets[0].bar.size()));
    out += " hours</th><th>Last error</th><th>Certificate</th></tr></thead><tbody>";
    for (const auto& t : g.targets) {
      out += "<tr class=\"target\" data-target=\"";
      append_html_escaped(out, t.name);
      out += "\" data-state=\"";
      out += to_string(t.state);
      out += "\"><td class=\"name\"><span class=\"n\">";
      append_html_escaped(out, t.name);
      out += "</span>";
      if (!t.url.empty()) {
        out += "<br><span class=\"url\">";
        append_html_escaped(out, t.url);
        out += "</span>";
      }
      out += "</td><td class=\"state\"><span class=\"badge ";
      out += to_string(t.state);
      out += "\">";
      out += to_string(t.state);
      out += "</span><br><small>";
      if (t.last_status != 0) {
        out += "HTTP ";
        append_int(out, t.last_status);
        out += ", ";
      }
      out += format_time(t.last_time_us);
      out += "</small></td><td class=\"uptime-24h\">";
      if (t.uptime_24h) {
        append_percent(out, *t.uptime_24h);
      } else {
        out += "–";
      }
      out += "</td><td class=\"uptime-7d\">";
      if (t.uptime_7d) {
        append_percent(out, *t.uptime_7d);
      } else {
        out += "–";
      }
      out += "</td><td class=\"response\">";
      append_sparkline(out, t.samples);
      out += " <span class=\"ms\">";
      append_fixed(out, t.last_ms, t.last_ms < 10 ? 1 : 0);
      out += " ms</span></td><td class=\"history\">";
      append_bar(out, t);
      out += "</td><td class=\"last-error\">";
      if (t.last_error_time_us != 0) {
        out += "<span class=\"class\">";
        append_html_escaped(out, t.last_error);
        out += "</span>";
        if (!t.last_error_message.empty()) {
          out += ": <span class=\"message\">";
          append_html_escaped(out, t.last_error_message);
          out += "</span>";
        }
        out += "<br><small class=\"when\">";
        out += format_time(t.last_error_time_us);
        out += "</small>";
      } else {
        out += "none";
      }
      out += "</td><td class=\"cert";
      if (t.cert_days_left) {
        const std::int64_t d = *t.cert_days_left;
        out += d < 0 ? " expired\">expired " : d < options.cert_warn_days ? " warn\">" : "\">";
        append_int(out, d < 0 ? -d : d);
        out += d == 1 || d == -1 ? " day" : " days";
        if (d < 0) {
          out += " ago";
        }
      } else {
        out += "\">–";
      }
      out += "</td></tr>";
    }
    out += "</tbody></table></section>";
  }
  out += "</main><footer>Generated ";
  out += format_time(now_us);
  out +=
      " by webmon. Uptime counts whole UTC hours; the bar shows one hour per mark. "
      "<a href=\"status.json\">JSON</a></footer></body></html>\n";
  return out;
}

std::string render_json(const std::vector<Group>& groups, std::int64_t now_us,
                        const PageOptions& options) {
  std::string out;
  std::size_t total = 0;
  for (const auto& g : groups) {
    total += g.targets.size();
  }
  out.reserve(256 + total * 900);
  auto str = [&](std::string_view s) {
    out += '"';
    append_json_escaped(out, s);
    out += '"';
  };
  auto opt_pct = [&](const std::optional<double>& v) {
    if (v) {
      append_fixed(out, *v, 3);
    } else {
      out += "null";
    }
  };
  out += "{\"title\":";
  str(options.title);
  out += ",\"generated_at\":";
  str(format_time(now_us));
  out += ",\"generated_at_us\":";
  append_int(out, now_us);
  out += ",\"groups\":[";
  bool first_group = true;
  for (const auto& g : groups) {
    out += first_group ? "{\"name\":" : ",{\"name\":";
    first_group = false;
    if (options.grouped) {
      str(g.name);
    } else {
      out += "null";
    }
    out += ",\"targets\":[";
    bool first = true;
    for (const auto& t : g.targets) {
      out += first ? "{\"name\":" : ",{\"name\":";
      first = false;
      str(t.name);
      out += ",\"url\":";
      str(t.url);
      out += ",\"state\":";
      str(to_string(t.state));
      out += ",\"last_check_us\":";
      append_int(out, t.last_time_us);
      out += ",\"status_code\":";
      if (t.last_status != 0) {
        append_int(out, t.last_status);
      } else {
        out += "null";
      }
      out += ",\"response_time_ms\":";
      append_fixed(out, t.last_ms, 3);
      out += ",\"uptime_24h_pct\":";
      opt_pct(t.uptime_24h);
      out += ",\"uptime_7d_pct\":";
      opt_pct(t.uptime_7d);
      out += ",\"last_error\":";
      if (t.last_error_time_us != 0) {
        out += "{\"error\":";
        str(t.last_error);
        out += ",\"message\":";
        str(t.last_error_message);
        out += ",\"time_us\":";
        append_int(out, t.last_error_time_us);
        out += '}';
      } else {
        out += "null";
      }
      out += ",\"cert_days_left\":";
      if (t.cert_days_left) {
        append_int(out, *t.cert_days_left);
      } else {
        out += "null";
      }
      out += ",\"response_times_ms\":[";
      for (std::size_t i = 0; i < t.samples.size(); ++i) {
        if (i > 0) {
          out += ',';
        }
        append_fixed(out, t.samples[i].ms, 3);
      }
      out += "],\"sample_ok\":[";
      for (std::size_t i = 0; i < t.samples.size(); ++i) {
        out += i > 0 ? "," : "";
        out += t.samples[i].ok ? "true" : "false";
      }
      out += "],\"hourly_uptime_pct\":[";
      for (std::size_t i = 0; i < t.bar.size(); ++i) {
        if (i > 0) {
          out += ',';
        }
        opt_pct(t.bar[i]);
      }
      out += "],\"hourly_start_us\":";
      append_int(out, t.bar_start_hour * kHourMicros);
      out += '}';
    }
    out += "]}";
  }
  out += "]}\n";
  return out;
}

}  // namespace webmon::plugins::status_page
