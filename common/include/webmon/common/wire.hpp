// The JSON wire format of docs/wire-format.md, shared by kafka_sink,
// kafka_source, the file sink and postgres_sink's rejected table:
//
//   {"schema":1,"kind":"http_check","id":"…","time":"2026-11-27T22:00:00.123456Z",
//    …fields in record order…, "labels":{…}}
//
// Timestamps are RFC 3339 UTC strings, doubles always carry a '.' or an exponent so they
// decode as doubles again, non-finite doubles are written as null.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::common {

inline constexpr int kWireSchema = 1;

/// Appends the record's JSON object (no newline) to `out`.
void append_json(const sdk::Record& record, std::string& out);

/// The same with the envelope key "kind_hash" (kind_wire.hpp: the hash of the declaration the
/// message's headers carry) right after "kind"; none when `kind_hash` is empty.
void append_json(const sdk::Record& record, std::string_view kind_hash, std::string& out);

/// The record's JSON object.
std::string to_json(const sdk::Record& record);

/// Appends `s` as a JSON string literal (with quotes), escaping as RFC 8259 requires.
/// Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid JSON.
void append_json_string(std::string_view s, std::string& out);

/// Whether `s` is a UUID in its 36-character text form (any version, either case).
bool is_uuid(std::string_view s) noexcept;

struct KindSchema;

/// Tells the decoder the schema of the kind it is reading (as soon as the 'kind' key is read;
/// a message the fast path gives up on is asked about again by the general decoder).
class SchemaLookup {
 public:
  /// The schema to decode `kind` with; nullptr with `error` empty decodes without one (fields
  /// take their JSON types), nullptr with `error` set fails the decode with that error.
  /// `kind_hash` is the value's "kind_hash" (32 lowercase hex digits), empty when it has none.
  virtual const KindSchema* find(std::string_view kind, std::string_view kind_hash,
                                 std::string& error) = 0;

 protected:
  ~SchemaLookup() = default;
};

/// Decodes wire-format JSON. Reusable and not thread-safe: keep one per thread.
class JsonDecoder {
 public:
  JsonDecoder();
  ~JsonDecoder();
  JsonDecoder(const JsonDecoder&) = delete;
  JsonDecoder& operator=(const JsonDecoder&) = delete;

  /// Fills `out` from `json`. On failure returns false and sets `error` to the reason
  /// ("not JSON: …", "missing 'id'", "field 'status_code': expected int or null, got string").
  /// Fields of kinds compiled in (find_schema) get their schema type (timestamps parsed, ints
  /// widened to doubles); other kinds decode with their JSON types.
  bool decode(std::string_view json, sdk::Record& out, std::string& error);
  /// The same with the schema chosen by `lookup` (kinds known at run time).
  bool decode(std::string_view json, sdk::Record& out, std::string& error, SchemaLookup& lookup);

  /// Largest message accepted (bigger ones fail with "message of N bytes exceeds ...").
  void set_max_bytes(std::size_t max) noexcept { max_bytes_ = max; }
  /// Whether messages in the exact layout our encoder writes, of a kind with a schema, are read
  /// in one pass without a DOM (on by default; the result is the same either way, which a test
  /// checks by turning it off).
  void set_fast_path(bool on) noexcept { fast_path_ = on; }
  /// Messages decoded on the fast path so far.
  [[nodiscard]] std::uint64_t fast_decodes() const noexcept { return fast_decodes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t max_bytes_ = 1 << 20;
  bool fast_path_ = true;
  std::uint64_t fast_decodes_ = 0;
};

}  // namespace webmon::common
