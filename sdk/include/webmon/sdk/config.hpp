// A plugin's configuration as a plain tree, independent of the YAML library the host uses.
//
// Scalars keep their text as written (after ${VAR} substitution); typed accessors parse on
// demand and throw ConfigError naming the position on failure. Before a component is built,
// the host validates every option against the plugin's options table — nested `object` and
// `object_list` tables included, each item of a list on its own: unknown keys, required keys,
// types, bounds (`min`/`max`) and choices — naming `file:line:column` and the option's full
// path (`targets[3].port`), and fills in every default, nested ones too. A plugin then gets a
// filled, checked struct with sdk::load_options (webmon/sdk/options.hpp), or reads values
// with these accessors; it needs its own checks only for rules the table cannot express
// (node.fail("...")) and for options of type `any`, which the host does not check.
// ConfigError must not escape a plugin: the SDK's factory wrapper catches it (see plugin.hpp).
#pragma once

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace webmon::sdk {

/// Where a configuration node was written.
struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown

  /// "file:line:column", or the parts that are known.
  [[nodiscard]] std::string str() const {
    std::string s = file.empty() ? std::string("<config>") : file;
    if (line > 0) {
      s += ':' + std::to_string(line);
      if (column > 0) {
        s += ':' + std::to_string(column);
      }
    }
    return s;
  }
};

/// A configuration mistake; what() is a complete one-line message starting with the position.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses "250ms", "10s", "5m", "1h", "1d", "1.5s", "0". Returns nullopt when malformed or
/// negative.
inline std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text == "0") {
    return std::chrono::milliseconds(0);
  }
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double number = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || errno != 0 || !std::isfinite(number) || number < 0 ||
      s.find_first_of("eExXnN") < static_cast<std::size_t>(end - s.c_str())) {
    return std::nullopt;
  }
  const std::string_view unit(end);
  double factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else if (unit == "d") {
    factor = 86'400'000;
  } else {
    return std::nullopt;
  }
  const double ms = number * factor;
  if (ms > 1e15) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

/// Parses "512", "64KiB", "1MiB", "2GiB", "10KB", "5MB", "1GB". Returns nullopt when malformed
/// or when the size does not fit in 64 bits.
inline std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0 || digits > 15) {
    return std::nullopt;
  }
  const std::uint64_t number =
      std::strtoull(std::string(text.substr(0, digits)).c_str(), nullptr, 10);
  const std::string_view unit = text.substr(digits);
  std::uint64_t factor = 0;
  if (unit.empty() || unit == "B") {
    factor = 1;
  } else if (unit == "KiB") {
    factor = 1ULL << 10;
  } else if (unit == "MiB") {
    factor = 1ULL << 20;
  } else if (unit == "GiB") {
    factor = 1ULL << 30;
  } else if (unit == "KB") {
    factor = 1000;
  } else if (unit == "MB") {
    factor = 1000 * 1000;
  } else if (unit == "GB") {
    factor = 1000 * 1000 * 1000;
  } else {
    return std::nullopt;
  }
  if (number > UINT64_MAX / factor) {
    return std::nullopt;  // does not fit in 64 bits
  }
  return number * factor;
}

/// Parses a whole decimal integer (optional sign). Returns nullopt when malformed.
inline std::optional<std::int64_t> parse_int(std::string_view text) {
  if (text.empty() || text.size() > 20) {
    return std::nullopt;
  }
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size() || s[0] == ' ' || s[0] == '+') {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(v);
}

/// Parses a finite decimal number. Returns nullopt when malformed.
inline std::optional<double> parse_double(std::string_view text) {
  if (text.empty() || text.size() > 64) {
    return std::nullopt;
  }
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || s[0] == ' ' ||
      s.find_first_of("xXnN") != std::string::npos) {
    return std::nullopt;
  }
  return v;
}

/// Parses YAML 1.2 core booleans: true/false/True/False/TRUE/FALSE.
inline std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") {
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    return false;
  }
  return std::nullopt;
}

/// One node of a configuration tree: null, a scalar, a list or a map (keys in written order).
class ConfigNode {
 public:
  enum class Type : std::uint8_t { null, scalar, list, map };

  ConfigNode() = default;
  explicit ConfigNode(std::string scalar, SourceLocation where = {})
      : type_(Type::scalar), scalar_(std::move(scalar)), where_(std::move(where)) {}
  static ConfigNode make_list(SourceLocation where = {}) {
    ConfigNode n;
    n.type_ = Type::list;
    n.where_ = std::move(where);
    return n;
  }
  static ConfigNode make_map(SourceLocation where = {}) {
    ConfigNode n;
    n.type_ = Type::map;
    n.where_ = std::move(where);
    return n;
  }

  [[nodiscard]] Type type() const noexcept { return type_; }
  [[nodiscard]] bool is_null() const noexcept { return type_ == Type::null; }
  [[nodiscard]] bool is_scalar() const noexcept { return type_ == Type::scalar; }
  [[nodiscard]] bool is_list() const noexcept { return type_ == Type::list; }
  [[nodiscard]] bool is_map() const noexcept { return type_ == Type::map; }
  [[nodiscard]] const SourceLocation& where() const noexcept { return where_; }
  void set_where(SourceLocation where) { where_ = std::move(where); }

  /// The scalar's text as written ("" for non-scalars).
  [[nodiscard]] const std::string& text() const noexcept { return scalar_; }
  /// List items (empty for non-lists).
  [[nodiscard]] const std::vector<ConfigNode>& items() const noexcept { return items_; }
  /// Map entries in written order (empty for non-maps).
  [[nodiscard]] const std::vector<std::pair<std::string, ConfigNode>>& entries() const noexcept {
    return entries_;
  }

  /// Mutable access (the host fills in defaults; plugins may rewrite their own copy).
  std::vector<ConfigNode>& items() noexcept { return items_; }
  std::vector<std::pair<std::string, ConfigNode>>& entries() noexcept { return entries_; }

  void push_back(ConfigNode item) { items_.push_back(std::move(item)); }
  /// Adds or replaces a map entry.
  void set(std::string key, ConfigNode value) {
    for (auto& e : entries_) {
      if (e.first == key) {
        e.second = std::move(value);
        return;
      }
    }
    entries_.emplace_back(std::move(key), std::move(value));
  }
  /// Removes a map entry; returns whether it existed.
  bool erase(std::string_view key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.erase(it);
        return true;
      }
    }
    return false;
  }

  /// The map entry with this key, or nullptr.
  [[nodiscard]] const ConfigNode* find(std::string_view key) const noexcept {
    for (const auto& e : entries_) {
      if (e.first == key) {
        return &e.second;
      }
    }
    return nullptr;
  }
  [[nodiscard]] bool has(std::string_view key) const noexcept {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null();
  }

  /// Throws ConfigError "<where>: <what> <message>".
  [[noreturn]] void fail(std::string_view message) const {
    throw ConfigError(where_.str() + ": " + std::string(message));
  }

  // Typed accessors: parse this node, or throw ConfigError naming the position.
  [[nodiscard]] const std::string& as_string() const {
    expect_scalar("a string");
    return scalar_;
  }
  [[nodiscard]] bool as_bool() const {
    expect_scalar("true or false");
    return checked(parse_bool(scalar_), "expected true or false");
  }
  [[nodiscard]] std::int64_t as_int() const {
    expect_scalar("an integer");
    return checked(parse_int(scalar_), "expected an integer");
  }
  [[nodiscard]] double as_double() const {
    expect_scalar("a number");
    return checked(parse_double(scalar_), "expected a number");
  }
  [[nodiscard]] std::chrono::milliseconds as_duration() const {
    expect_scalar("a duration");
    return checked(parse_duration(scalar_), "expected a duration such as 250ms, 10s, 5m or 1h");
  }
  [[nodiscard]] std::uint64_t as_size() const {
    expect_scalar("a size");
    return checked(parse_size(scalar_), "expected a size such as 512, 64KiB or 1MiB");
  }
  /// A list of scalars; a single scalar is taken as a one-element list.
  [[nodiscard]] std::vector<std::string> as_string_list() const {
    std::vector<std::string> out;
    if (is_scalar()) {
      out.push_back(scalar_);
      return out;
    }
    if (!is_list()) {
      fail("expected a list of strings");
    }
    for (const auto& item : items_) {
      out.push_back(item.as_string());
    }
    return out;
  }
  /// A map of scalar values.
  [[nodiscard]] std::map<std::string, std::string, std::less<>> as_string_map() const {
    if (!is_map()) {
      fail("expected a map of names to strings");
    }
    std::map<std::string, std::string, std::less<>> out;
    for (const auto& [k, v] : entries_) {
      out[k] = v.as_string();
    }
    return out;
  }

  // Map helpers: the value under `key` or `fallback` when absent or null.
  [[nodiscard]] std::string get_string(std::string_view key, std::string fallback = {}) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_string() : fallback;
  }
  [[nodiscard]] bool get_bool(std::string_view key, bool fallback) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_bool() : fallback;
  }
  [[nodiscard]] std::int64_t get_int(std::string_view key, std::int64_t fallback) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_int() : fallback;
  }
  [[nodiscard]] double get_double(std::string_view key, double fallback) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_double() : fallback;
  }
  [[nodiscard]] std::chrono::milliseconds get_duration(std::string_view key,
                                                       std::chrono::milliseconds fallback) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_duration() : fallback;
  }
  [[nodiscard]] std::uint64_t get_size(std::string_view key, std::uint64_t fallback) const {
    const ConfigNode* n = find(key);
    return n != nullptr && !n->is_null() ? n->as_size() : fallback;
  }

 private:
  void expect_scalar(std::string_view what) const {
    if (!is_scalar()) {
      fail("expected " + std::string(what) + ", got " +
           (is_list()  ? "a list"
            : is_map() ? "a map"
                       : "nothing"));
    }
  }
  template <typename T>
  T checked(const std::optional<T>& v, std::string_view message) const {
    if (!v) {
      fail(std::string(message) + ", got '" + scalar_ + "'");
    }
    return *v;
  }

  Type type_ = Type::null;
  std::string scalar_;
  std::vector<ConfigNode> items_;
  std::vector<std::pair<std::string, ConfigNode>> entries_;
  SourceLocation where_;
};

}  // namespace webmon::sdk
