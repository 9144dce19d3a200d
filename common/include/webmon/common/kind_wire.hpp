// Record kinds on the Kafka wire (docs/wire-format.md, "Kinds and types on the wire"):
// kafka_sink writes each record's declaration in compact form in the header `webmon-fields`
// (with `webmon-kind` and `webmon-kind-version`), kafka_source reads it back, so types survive
// for kinds the consumer was never built with.
//
//   target:s!*,port:i!,connect_ms:d,cert_not_after:t,...,labels:m
//
// One entry per declared field in declaration order: name ':' type letter (b bool, i int,
// d double, s string, t timestamp, m string map), then '!' when the field is not nullable,
// then '*' for the kind's key field. No spaces.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webmon/sdk/kind.hpp"

namespace webmon::common {

inline constexpr std::string_view kKindHeader = "webmon-kind";
inline constexpr std::string_view kKindVersionHeader = "webmon-kind-version";
inline constexpr std::string_view kFieldsHeader = "webmon-fields";

/// The value's envelope key that names the declaration in the message's headers
/// (docs/wire-format.md, "kind_hash"): 32 lowercase hex digits.
inline constexpr std::string_view kKindHashKey = "kind_hash";
inline constexpr std::size_t kKindHashSize = 32;

/// The declaration's hash: the first 128 bits of the SHA-256 of the three header values joined
/// by '\n' (`kind '\n' version '\n' fields`), as 32 lowercase hex digits. kafka_sink writes
/// it as the value's "kind_hash" next to the headers; kafka_source reads the headers only for a
/// hash it has not learned yet. A cryptographic hash, so that nobody who can produce to a topic
/// can make a declaration of their own that another producer's hash would name.
std::string kind_hash(std::string_view kind, std::string_view version, std::string_view fields);

/// Whether `s` is 32 lowercase hex digits (the form of a kind_hash).
bool is_kind_hash(std::string_view s) noexcept;

/// Longest webmon-fields value accepted (a declaration of a few hundred fields fits).
inline constexpr std::size_t kMaxFieldsHeader = 32 * 1024;

/// The type letter of a field type ('s' for string, ...).
char type_letter(sdk::FieldType t) noexcept;

/// The compact form of a declaration's fields (see above).
std::string format_kind_fields(const sdk::KindSpec& spec);

/// A declaration read from a message's headers; owns everything its KindSpec points to.
class WireKind {
 public:
  /// Parses the three header values. Returns nullptr and sets `error` (which names the header,
  /// the entry and what is wrong) when they are malformed.
  static std::unique_ptr<WireKind> parse(std::string_view kind, std::string_view version,
                                         std::string_view fields, std::string& error);
  WireKind(const WireKind&) = delete;
  WireKind& operator=(const WireKind&) = delete;
  [[nodiscard]] const sdk::KindSpec& spec() const noexcept { return spec_; }

 private:
  WireKind() = default;
  std::string kind_;
  std::deque<std::string> names_;
  std::string key_;
  std::vector<sdk::FieldSpec> fields_;
  sdk::KindSpec spec_{};
};

/// Why `incoming` cannot be used for kind `known.name` (a field declared with another type),
/// naming the kind, the field, both types and both versions; nullopt when every field both
/// declare has the same type.
std::optional<std::string> incompatibility(const sdk::KindSpec& known,
                                           const sdk::KindSpec& incoming);

}  // namespace webmon::common
