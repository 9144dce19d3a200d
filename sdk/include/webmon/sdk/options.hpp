// Options declared once: bounds, choices and a binding to the plugin's own options struct.
//
//   struct Options { std::chrono::milliseconds timeout{}; std::int64_t port = 0; std::string mode;
//   }; constexpr OptionSpec kOptions[] = {
//       {.name = "timeout", .type = OptionType::duration, .default_value = "5s", .required = false,
//        .description = "...", .min = "1ms", .max = "10m", .assign = bind<&Options::timeout>()},
//       ...};
//   Options o = load_options<Options>(config, kOptions);   // filled and checked
//
// The host checks every value against the table (types, bounds, choices, unknown keys,
// required keys) before a component is built and fills in defaults; load_options() then only
// converts. It applies the same checks itself, so a plugin built in a unit test without the
// host gets the same errors. Errors are sdk::ConfigError with "file:line:column: ...".
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "webmon/sdk/config.hpp"
#include "webmon/sdk/plugin.hpp"

namespace webmon::sdk {

// ---------------------------------------------------------------------------------------------
// Converting one node into a member, by the member's type.

inline void from_config(const ConfigNode& n, bool& out) { out = n.as_bool(); }
inline void from_config(const ConfigNode& n, std::int64_t& out) { out = n.as_int(); }
inline void from_config(const ConfigNode& n, int& out) {
  const std::int64_t v = n.as_int();
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    n.fail("value " + n.text() + " is out of range");
  }
  out = static_cast<int>(v);
}
/// Unsigned members take sizes ("64KiB") as well as plain numbers.
inline void from_config(const ConfigNode& n, std::uint64_t& out) { out = n.as_size(); }
inline void from_config(const ConfigNode& n, std::uint32_t& out) {
  const std::uint64_t v = n.as_size();
  if (v > std::numeric_limits<std::uint32_t>::max()) {
    n.fail("value " + n.text() + " is out of range");
  }
  out = static_cast<std::uint32_t>(v);
}
inline void from_config(const ConfigNode& n, double& out) { out = n.as_double(); }
inline void from_config(const ConfigNode& n, std::string& out) { out = n.as_string(); }
inline void from_config(const ConfigNode& n, std::chrono::milliseconds& out) {
  out = n.as_duration();
}
inline void from_config(const ConfigNode& n, std::vector<std::string>& out) {
  out = n.as_string_list();
}
inline void from_config(const ConfigNode& n, std::map<std::string, std::string, std::less<>>& out) {
  out = n.as_string_map();
}
/// The raw node, for options a plugin interprets itself (type `any`).
inline void from_config(const ConfigNode& n, ConfigNode& out) { out = n; }
template <typename T>
void from_config(const ConfigNode& n, std::optional<T>& out) {
  T v{};
  from_config(n, v);
  out = std::move(v);
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the host (validation) and load_options().

namespace detail {

inline bool in_choices(std::string_view choices, std::string_view value) {
  std::size_t start = 0;
  while (start <= choices.size()) {
    const std::size_t end = std::min(choices.find('|', start), choices.size());
    if (choices.substr(start, end - start) == value) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

inline std::string choices_text(std::string_view choices) {
  std::string out;
  std::size_t start = 0;
  while (start <= choices.size()) {
    const std::size_t end = std::min(choices.find('|', start), choices.size());
    out += (out.empty() ? "'" : ", '") + std::string(choices.substr(start, end - start)) + "'";
    start = end + 1;
  }
  return out;
}

/// The path of the nested table being loaded ("targets[3]"; empty at the top level), so that
/// messages name the full path of an option (`targets[3].port`). Set by load_into().
inline std::string& option_prefix() {
  thread_local std::string prefix;
  return prefix;
}
inline std::string option_path(std::string_view name) {
  const std::string& prefix = option_prefix();
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}
/// Sets option_prefix() for a scope.
class PrefixScope {
 public:
  explicit PrefixScope(std::string prefix)
      : saved_(std::exchange(option_prefix(), std::move(prefix))) {}
  ~PrefixScope() { option_prefix() = std::move(saved_); }
  PrefixScope(const PrefixScope&) = delete;
  PrefixScope& operator=(const PrefixScope&) = delete;

 private:
  std::string saved_;
};

/// A comparable number for a scalar of the given type (durations in ms, sizes in bytes).
inline std::optional<double> bound_value(OptionType type, std::string_view text) {
  switch (type) {
    case OptionType::integer: {
      auto v = parse_int(text);
      return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
    }
    case OptionType::number:
      return parse_double(text);
    case OptionType::duration: {
      auto v = parse_duration(text);
      return v ? std::optional<double>(static_cast<double>(v->count())) : std::nullopt;
    }
    case OptionType::size: {
      auto v = parse_size(text);
      return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace detail

/// Checks a node's bounds and choices against its spec (the type itself is checked by the
/// accessors). Throws ConfigError naming the position, the option's full path (`path`, or the
/// spec's name inside the table being loaded: `targets[3].port`) and what is allowed.
inline void check_option(const OptionSpec& spec, const ConfigNode& node,
                         std::string_view path = {}) {
  if (node.is_null()) {
    return;
  }
  const std::string name = path.empty() ? detail::option_path(spec.name) : std::string(path);
  if (spec.choices != nullptr) {
    auto check = [&](const ConfigNode& item) {
      if (item.is_scalar() && !detail::in_choices(spec.choices, item.text())) {
        item.fail("option '" + name + "' must be one of " + detail::choices_text(spec.choices) +
                  ", got '" + item.text() + "'");
      }
    };
    if (node.is_list()) {
      for (const auto& item : node.items()) {
        check(item);
      }
    } else {
      check(node);
    }
  }
  if (spec.min == nullptr && spec.max == nullptr) {
    return;
  }
  const bool counts_items = node.is_list() || node.is_map();
  std::optional<double> value;
  if (counts_items) {
    value = static_cast<double>(node.is_list() ? node.items().size() : node.entries().size());
  } else if (node.is_scalar()) {
    value = detail::bound_value(spec.type, node.text());
  }
  if (!value) {
    return;  // the type check reports malformed values
  }
  const OptionType bound_type = counts_items ? OptionType::integer : spec.type;
  const char* what = counts_items ? " items" : "";
  if (spec.min != nullptr) {
    const auto lo = detail::bound_value(bound_type, spec.min);
    if (lo && *value < *lo) {
      node.fail("option '" + name + "' must be at least " + spec.min + what + ", got " +
                (counts_items ? std::to_string(static_cast<long long>(*value)) : node.text()));
    }
  }
  if (spec.max != nullptr) {
    const auto hi = detail::bound_value(bound_type, spec.max);
    if (hi && *value > *hi) {
      node.fail("option '" + name + "' must be at most " + spec.max + what + ", got " +
                (counts_items ? std::to_string(static_cast<long long>(*value)) : node.text()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bindings.

namespace detail {

template <typename>
struct MemberTraits;
template <typename C, typename T>
struct MemberTraits<T C::*> {
  using Class = C;
  using Type = T;
};

template <auto Member>
void assign_member(void* target, const ConfigNode& value) {
  using Traits = MemberTraits<decltype(Member)>;
  from_config(value, static_cast<typename Traits::Class*>(target)->*Member);
}

template <typename T>
void load_into(const ConfigNode& config, std::span<const OptionSpec> table, T& out);

template <auto Member, const auto& Children>
void assign_object(void* target, const ConfigNode& value) {
  using Traits = MemberTraits<decltype(Member)>;
  auto& field = static_cast<typename Traits::Class*>(target)->*Member;
  if (!value.is_map()) {
    value.fail("option '" + option_prefix() + "': expected a map");
  }
  load_into(value, std::span<const OptionSpec>(Children), field);
}

template <auto Member, const auto& Children>
void assign_each(void* target, const ConfigNode& value) {
  using Traits = MemberTraits<decltype(Member)>;
  auto& field = static_cast<typename Traits::Class*>(target)->*Member;
  using Item = typename std::remove_cvref_t<decltype(field)>::value_type;
  if (!value.is_list()) {
    value.fail("option '" + option_prefix() + "': expected a list of maps");
  }
  field.clear();
  const std::string list = option_prefix();  // load_into() set it to this option's path
  for (std::size_t i = 0; i < value.items().size(); ++i) {
    const ConfigNode& item = value.items()[i];
    const PrefixScope scope(list + "[" + std::to_string(i) + "]");
    if (!item.is_map()) {
      item.fail("option '" + option_prefix() + "': expected a map");
    }
    Item one{};
    load_into(item, std::span<const OptionSpec>(Children), one);
    field.push_back(std::move(one));
  }
}

template <typename T>
void load_into(const ConfigNode& config, std::span<const OptionSpec> table, T& out) {
  for (const OptionSpec& spec : table) {
    const ConfigNode* node = config.find(spec.name);
    ConfigNode fallback;
    if (node == nullptr || node->is_null()) {
      if (spec.required) {
        config.fail("missing required option '" + option_path(spec.name) + "'");
      }
      if (spec.default_value == nullptr) {
        continue;
      }
      fallback = ConfigNode(spec.default_value, config.where());
      node = &fallback;
    }
    check_option(spec, *node);
    if (spec.assign != nullptr) {
      const PrefixScope scope(option_path(spec.name));  // nested binders extend it
      spec.assign(&out, *node);
    }
  }
}

}  // namespace detail

/// Binds an option to a member of the options struct: bind<&Options::timeout>(). The member's
/// type decides the conversion (bool, int, int64, uint32/uint64 (sizes or numbers), double,
/// string, milliseconds, vector<string>, map<string, string>, optional<T>, ConfigNode).
template <auto Member>
constexpr OptionAssign bind() noexcept {
  return &detail::assign_member<Member>;
}

/// Binds an `object` option to a struct member filled from the nested table `Children`.
template <auto Member, const auto& Children>
constexpr OptionAssign bind_object() noexcept {
  return &detail::assign_object<Member, Children>;
}

/// Binds an `object_list` option to a std::vector member, one element per list item, each
/// filled from the nested table `Children`.
template <auto Member, const auto& Children>
constexpr OptionAssign bind_each() noexcept {
  return &detail::assign_each<Member, Children>;
}

/// What an option may say besides its name, description, type and binding (see OptionSpec).
struct OptionExtra {
  const char* default_value = nullptr;  ///< YAML text; nullptr = no default
  bool required = false;
  const char* min = nullptr;
  const char* max = nullptr;
  const char* choices = nullptr;  ///< "a|b|c"
  bool secret = false;
};

namespace detail {

template <typename T>
struct OptionTypeOf;  // a member type without a matching option type does not compile
template <>
struct OptionTypeOf<bool> : std::integral_constant<OptionType, OptionType::boolean> {};
template <>
struct OptionTypeOf<int> : std::integral_constant<OptionType, OptionType::integer> {};
template <>
struct OptionTypeOf<std::int64_t> : std::integral_constant<OptionType, OptionType::integer> {};
template <>
struct OptionTypeOf<std::uint32_t> : std::integral_constant<OptionType, OptionType::size> {};
template <>
struct OptionTypeOf<std::uint64_t> : std::integral_constant<OptionType, OptionType::size> {};
template <>
struct OptionTypeOf<double> : std::integral_constant<OptionType, OptionType::number> {};
template <>
struct OptionTypeOf<std::string> : std::integral_constant<OptionType, OptionType::string> {};
template <>
struct OptionTypeOf<std::chrono::milliseconds>
    : std::integral_constant<OptionType, OptionType::duration> {};
template <>
struct OptionTypeOf<std::vector<std::string>>
    : std::integral_constant<OptionType, OptionType::string_list> {};
template <>
struct OptionTypeOf<std::map<std::string, std::string, std::less<>>>
    : std::integral_constant<OptionType, OptionType::string_map> {};
template <>
struct OptionTypeOf<ConfigNode> : std::integral_constant<OptionType, OptionType::any> {};
template <typename T>
struct OptionTypeOf<std::optional<T>> : OptionTypeOf<T> {};

}  // namespace detail

/// One option bound to a member, its type following from the member's type (bool: boolean;
/// int, int64: integer; uint32, uint64: size; double: number; string; milliseconds: duration;
/// vector<string>: string_list; map<string, string>: string_map; ConfigNode: any;
/// optional<T>: as T), so the table cannot disagree with the struct:
///
///   constexpr sdk::OptionSpec kOptions[] = {
///       sdk::option<&Options::port>("port", "TCP port", {.required = true, .min = "1"}),
///       sdk::option<&Options::timeout>("timeout", "per attempt", {.default_value = "5s"})};
template <auto Member>
constexpr OptionSpec option(const char* name, const char* description,
                            OptionExtra extra = {}) noexcept {
  using Type = typename detail::MemberTraits<decltype(Member)>::Type;
  return OptionSpec{.name = name,
                    .type = detail::OptionTypeOf<Type>::value,
                    .default_value = extra.default_value,
                    .required = extra.required,
                    .description = description,
                    .secret = extra.secret,
                    .min = extra.min,
                    .max = extra.max,
                    .choices = extra.choices,
                    .assign = bind<Member>()};
}

/// Fills `out` from a component's configuration with the table's bindings, applying defaults
/// and checking required keys, bounds and choices. Throws ConfigError.
template <typename T, std::size_t N>
void load_options(const ConfigNode& config, const OptionSpec (&table)[N], T& out) {
  detail::load_into(config, std::span<const OptionSpec>(table), out);
}

template <typename T, std::size_t N>
T load_options(const ConfigNode& config, const OptionSpec (&table)[N]) {
  T out{};
  load_options(config, table, out);
  return out;
}

}  // namespace webmon::sdk
