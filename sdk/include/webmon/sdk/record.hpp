// The record model: what flows between sources, transforms and sinks.
//
// A Record has a kind ("http_check"), a unique id (a UUID in text form, the idempotency key end
// to end), a time (UTC microseconds since the Unix epoch), typed fields in insertion order and
// a string map of labels. Records are plain values: copyable, movable, no virtual functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace webmon::sdk {

/// A point in time, UTC, microseconds since 1970-01-01T00:00:00Z.
struct Timestamp {
  std::int64_t micros = 0;
  friend constexpr bool operator==(Timestamp a, Timestamp b) noexcept {
    return a.micros == b.micros;
  }
  friend constexpr auto operator<=>(Timestamp a, Timestamp b) noexcept {
    return a.micros <=> b.micros;
  }
};

/// Null is std::monostate. The alternatives' order is part of the ABI.
using Value = std::variant<std::monostate, bool, std::int64_t, double, std::string, Timestamp>;

/// Index of each alternative of Value, for switch statements.
enum class ValueType : std::uint8_t { null = 0, boolean, integer, floating, string, timestamp };

inline ValueType type_of(const Value& v) noexcept { return static_cast<ValueType>(v.index()); }

/// Label names to values; sorted, so output is deterministic.
using Labels = std::map<std::string, std::string, std::less<>>;

struct Field {
  std::string name;
  Value value;
  friend bool operator==(const Field&, const Field&) = default;
};

class Record {
 public:
  std::string kind;
  std::string id;
  Timestamp time;
  std::vector<Field> fields;
  Labels labels;

  /// Appends a field without looking for an existing one (producers building a fresh record).
  void add(std::string name, Value value) {
    fields.push_back(Field{std::move(name), std::move(value)});
  }

  /// Sets a field, replacing an existing one of the same name.
  void set(std::string_view name, Value value) {
    for (auto& f : fields) {
      if (f.name == name) {
        f.value = std::move(value);
        return;
      }
    }
    fields.push_back(Field{std::string(name), std::move(value)});
  }

  /// The field's value, or nullptr when the record has no such field.
  [[nodiscard]] const Value* find(std::string_view name) const noexcept {
    for (const auto& f : fields) {
      if (f.name == name) {
        return &f.value;
      }
    }
    return nullptr;
  }

  /// The field's value if it holds a T, else nullptr (a null field gives nullptr).
  template <typename T>
  [[nodiscard]] const T* get(std::string_view name) const noexcept {
    const Value* v = find(name);
    return v != nullptr ? std::get_if<T>(v) : nullptr;
  }

  friend bool operator==(const Record&, const Record&) = default;
};

/// A batch of records moving through the pipeline together.
///
/// `token` is chosen by the source that emitted the batch and handed back unchanged in
/// Source::acknowledge() once every sink has resolved the batch.
struct Batch {
  std::vector<Record> records;
  std::uint64_t token = 0;
};

}  // namespace webmon::sdk
