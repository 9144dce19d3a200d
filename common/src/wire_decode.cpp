// JSON wire format: the simdjson-based decoder (the hot path of kafka_source).
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "webmon/common/kind_wire.hpp"
#include "webmon/common/schema.hpp"
#include "webmon/common/time.hpp"
#include "webmon/common/wire.hpp"
#include "wire_internal.hpp"

namespace webmon::common {

struct JsonDecoder::Impl {
  simdjson::dom::parser parser;
};

JsonDecoder::JsonDecoder() : impl_(std::make_unique<Impl>()) {}
JsonDecoder::~JsonDecoder() = default;

namespace {

std::string_view element_type_name(simdjson::dom::element_type t) {
  using simdjson::dom::element_type;
  switch (t) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
      return "int";
    case element_type::DOUBLE:
      return "double";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "bool";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// Converts a JSON value into a typed Value; `expected` is the schema's type (or nullptr).
bool convert(simdjson::dom::element e, const FieldSchema* expected, std::string_view name,
             sdk::Value& out, std::string& error) {
  using simdjson::dom::element_type;
  const element_type t = e.type();
  auto mismatch = [&] {
    error = "field '" + std::string(name) + "': expected " +
            std::string(type_name(expected->type)) + (expected->nullable ? " or null" : "") +
            ", got " + std::string(element_type_name(t));
    return false;
  };
  switch (t) {
    case element_type::NULL_VALUE:
      if (expected != nullptr && !expected->nullable) {
        return mismatch();
      }
      out = std::monostate{};
      return true;
    case element_type::BOOL:
      if (expected != nullptr && expected->type != sdk::ValueType::boolean) {
        return mismatch();
      }
      out = bool(e.get_bool().value_unsafe());
      return true;
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
      if (t == element_type::UINT64) {
        if (expected == nullptr || expected->type != sdk::ValueType::floating) {
          error = "field '" + std::string(name) + "': integer out of range";
          return false;
        }
        out = static_cast<double>(e.get_uint64().value_unsafe());
        return true;
      }
      if (expected == nullptr) {
        if (t == element_type::INT64) {
          out = e.get_int64().value_unsafe();
        } else {
          out = e.get_double().value_unsafe();
        }
        return true;
      }
      if (expected->type == sdk::ValueType::floating) {
        out = t == element_type::INT64 ? static_cast<double>(e.get_int64().value_unsafe())
                                       : e.get_double().value_unsafe();
        return true;
      }
      if (expected->type == sdk::ValueType::integer && t == element_type::INT64) {
        out = e.get_int64().value_unsafe();
        return true;
      }
      return mismatch();
    }
    case element_type::STRING: {
      const std::string_view s = e.get_string().value_unsafe();
      if (expected != nullptr && expected->type == sdk::ValueType::timestamp) {
        const auto ts = parse_rfc3339(s);
        if (!ts) {
          error = "field '" + std::string(name) + "': expected an RFC 3339 timestamp, got '" +
                  std::string(s.substr(0, 64)) + "'";
          return false;
        }
        out = *ts;
        return true;
      }
      if (expected != nullptr && expected->type != sdk::ValueType::string) {
        return mismatch();
      }
      if (auto* str = std::get_if<std::string>(&out)) {
        str->assign(s);  // a reused record: keep the string's storage
      } else {
        out.emplace<std::string>(s);
      }
      return true;
    }
    case element_type::ARRAY:
    case element_type::OBJECT:
      error = "field '" + std::string(name) + "': unsupported type " +
              std::string(element_type_name(t));
      return false;
  }
  error = "field '" + std::string(name) + "': unsupported value";
  return false;
}

}  // namespace

namespace {

enum class Key : std::uint8_t { field, schema, kind, kind_hash, id, time, labels };

// Classifies a key by its length first: most keys are fields and fail at once.
Key classify(std::string_view k) noexcept {
  switch (k.size()) {
    case 2:
      return k == "id" ? Key::id : Key::field;
    case 4:
      return k == "kind" ? Key::kind : k == "time" ? Key::time : Key::field;
    case 6:
      return k == "schema" ? Key::schema : k == "labels" ? Key::labels : Key::field;
    case 9:
      return k == "kind_hash" ? Key::kind_hash : Key::field;
    default:
      return Key::field;
  }
}

}  // namespace

namespace {
// The schemas compiled in; other kinds decode untyped.
class CompiledSchemas final : public SchemaLookup {
 public:
  const KindSchema* find(std::string_view kind, std::string_view /*kind_hash*/,
                         std::string& /*error*/) override {
    return find_schema(kind);
  }
};
}  // namespace

bool JsonDecoder::decode(std::string_view json, sdk::Record& out, std::string& error) {
  CompiledSchemas compiled;
  return decode(json, out, error, compiled);
}

namespace {

// ---- The fast path -------------------------------------------------------------------------
// Most messages were written by our own encoder (append_json) for a declared kind: the envelope
// in a fixed order, no whitespace, fields in declaration order, labels last and sorted. For
// those, the declaration says what each value must be, so the message is read in one pass
// without building a DOM. Anything else — whitespace, an escape or a non-ASCII byte in a string,
// a key out of place or repeated, an undeclared field, any value the declaration does not
// allow, trailing bytes — makes the fast path give up, and the general decoder below decodes
// the message from the start (and words the error). The fast path only accepts documents that
// are valid JSON and decodes them to exactly what the general decoder would; a test compares
// the two on damaged and random messages (wire_test.cpp, FastPathDecodesAsTheGeneralDecoder).

// Bytes that may appear unescaped in a string the fast path takes: printable ASCII except the
// quote and the backslash.
constexpr std::array<bool, 256> kPlainByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) {
    t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
  }
  return t;
}();

class FastReader {
 public:
  explicit FastReader(std::string_view s) noexcept : p_(s.data()), end_(s.data() + s.size()) {}

  bool literal(std::string_view l) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < l.size() ||
        std::memcmp(p_, l.data(), l.size()) != 0) {
      return false;
    }
    p_ += l.size();
    return true;
  }
  bool next_is(char c) const noexcept { return p_ < end_ && *p_ == c; }
  bool at_end() const noexcept { return p_ == end_; }

  // A string of plain bytes (no escape, control character or non-ASCII byte).
  bool string(std::string_view& out) noexcept {
    if (p_ == end_ || *p_ != '"') {
      return false;
    }
    const char* begin = ++p_;
    for (;;) {  // 16 bytes at a time while 16 are left, then one at a time
      if (end_ - p_ < 16) {
        while (p_ < end_ && kPlainByte[static_cast<unsigned char>(*p_)]) {
          ++p_;
        }
        break;
      }
      const unsigned m = special_mask16(p_);
      if (m != 0) {
        p_ += std::countr_zero(m);
        break;
      }
      p_ += 16;
    }
    if (p_ == end_ || *p_ != '"') {
      return false;
    }
    out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
    ++p_;
    return true;
  }

  // A number in JSON's grammar; `integer` when it has neither a fraction nor an exponent.
  bool number(std::string_view& out, bool& integer) noexcept {
    const char* begin = p_;
    if (p_ < end_ && *p_ == '-') {
      ++p_;
    }
    if (p_ == end_) {
      return false;
    }
    if (*p_ == '0') {
      ++p_;
    } else if (digit()) {
      skip_digits();
    } else {
      return false;
    }
    integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (!digit()) {
        return false;
      }
      skip_digits();
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) {
        ++p_;
      }
      if (!digit()) {
        return false;
      }
      skip_digits();
    }
    out = std::string_view(begin, static_cast<std::size_t>(p_ - begin));
    return true;
  }

 private:
  bool digit() const noexcept { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; }
  void skip_digits() noexcept {
    while (digit()) {
      ++p_;
    }
  }

  const char* p_;
  const char* end_;
};

// An integer the general decoder reads as a JSON int64 and the fast path can convert exactly:
// at most 18 digits (no overflow), and not "-0" (which JSON parsers disagree about).
bool small_integer(std::string_view text, std::int64_t& out) noexcept {
  const std::size_t digits = text.size() - (text.front() == '-' ? 1 : 0);
  if (digits > 18 || text == "-0") {
    return false;
  }
  return std::from_chars(text.data(), text.data() + text.size(), out).ec == std::errc();
}

// A decimal without exponent and with at most 15 digits ("104.217", "-0.5"): its digits as an
// integer are exact in a double, and so is 10^k for k <= 22, so one division gives the correctly
// rounded value, as any correct parser (simdjson's, from_chars) does — only faster.
bool simple_decimal(std::string_view text, double& out) noexcept {
  static constexpr std::array<double, 23> kPow10 = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  std::size_t i = text.front() == '-' ? 1 : 0;
  std::uint64_t mantissa = 0;
  int digits = 0;
  int fraction = -1;  // digits after the '.', once seen
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      fraction = 0;
      continue;
    }
    if (c < '0' || c > '9' || ++digits > 15) {
      return false;  // an exponent, or too many digits for the exact path
    }
    mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
    fraction += fraction >= 0 ? 1 : 0;
  }
  const double v =
      static_cast<double>(mantissa) / kPow10[static_cast<std::size_t>(std::max(fraction, 0))];
  out = text.front() == '-' ? -v : v;
  return true;
}

// One value, as the declaration `fs` wants it; false when the general decoder must decide.
bool fast_value(FastReader& r, const FieldSchema& fs, sdk::Value& out) {
  if (r.literal("null")) {
    if (!fs.nullable) {
      return false;
    }
    out = std::monostate{};
    return true;
  }
  switch (fs.type) {
    case sdk::ValueType::boolean:
      if (r.literal("true")) {
        out = true;
        return true;
      }
      if (r.literal("false")) {
        out = false;
        return true;
      }
      return false;
    case sdk::ValueType::integer: {
      std::string_view text;
      bool integer = false;
      std::int64_t v = 0;
      if (!r.number(text, integer) || !integer || !small_integer(text, v)) {
        return false;
      }
      out = v;
      return true;
    }
    case sdk::ValueType::floating: {
      std::string_view text;
      bool integer = false;
      if (!r.number(text, integer)) {
        return false;
      }
      if (integer) {
        std::int64_t v = 0;
        if (!small_integer(text, v)) {
          return false;
        }
        out = static_cast<double>(v);  // as the general decoder widens a JSON int64
        return true;
      }
      double d = 0;
      if (simple_decimal(text, d)) {
        out = d;
        return true;
      }
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
      if (ec != std::errc() || end != text.data() + text.size()) {
        return false;  // out of range: the general decoder words it
      }
      out = d;
      return true;
    }
    case sdk::ValueType::string: {
      std::string_view s;
      if (!r.string(s)) {
        return false;
      }
      if (auto* str = std::get_if<std::string>(&out)) {
        str->assign(s);
      } else {
        out.emplace<std::string>(s);
      }
      return true;
    }
    case sdk::ValueType::timestamp: {
      std::string_view s;
      if (!r.string(s)) {
        return false;
      }
      const auto ts = parse_rfc3339(s);
      if (!ts) {
        return false;
      }
      out = *ts;
      return true;
    }
    case sdk::ValueType::null:
      return false;
  }
  return false;
}

// The whole message on the fast path; false hands it to the general decoder, which overwrites
// whatever was written to `out` so far.
bool fast_decode(std::string_view json, sdk::Record& out, SchemaLookup& lookup) {
  FastReader r(json);
  std::string_view kind;
  std::string_view id;
  std::string_view time;
  std::string_view kind_hash;
  if (!r.literal(R"({"schema":1,"kind":)") || !r.string(kind) || kind.empty() ||
      (r.literal(R"(,"kind_hash":)") && (!r.string(kind_hash) || !is_kind_hash(kind_hash))) ||
      !r.literal(R"(,"id":)") || !r.string(id) || !is_uuid(id) || !r.literal(R"(,"time":)") ||
      !r.string(time)) {
    return false;
  }
  const auto t = parse_rfc3339(time);
  if (!t) {
    return false;
  }
  // A kind_hash anywhere else: the general decoder's, so that the lookup is asked with it
  // (not first without it by this path and then with it by the other).
  if (kind_hash.empty() && json.find(R"("kind_hash")") != std::string_view::npos) {
    return false;
  }
  std::string lookup_error;
  const KindSchema* schema = lookup.find(kind, kind_hash, lookup_error);
  if (schema == nullptr || schema->fields.size() > 64) {
    return false;
  }
  out.kind.assign(kind);
  out.id.assign(id);
  out.time = *t;
  const auto& fields = schema->fields;
  out.fields.reserve(fields.size());
  std::uint64_t present = 0;  // declared fields read (a repeated key leaves the fast path)
  std::uint64_t seen = 0;     // ... and not null
  std::size_t used = 0;
  std::size_t cursor = 0;
  for (;;) {
    std::string_view key;
    if (!r.literal(",") || !r.string(key) || !r.literal(":")) {
      return false;
    }
    if (key == "labels") {
      break;
    }
    const FieldSchema* fs =
        cursor < fields.size() && fields[cursor].name == key ? &fields[cursor] : schema->find(key);
    if (fs == nullptr) {
      return false;  // undeclared (or an envelope key again)
    }
    const auto index = static_cast<std::size_t>(fs - fields.data());
    const std::uint64_t bit = std::uint64_t{1} << index;
    if ((present & bit) != 0) {
      return false;
    }
    present |= bit;
    cursor = index + 1;
    sdk::Field& f = used < out.fields.size() ? out.fields[used] : out.fields.emplace_back();
    ++used;
    if (!fast_value(r, *fs, f.value)) {
      return false;
    }
    f.name.assign(key);
    if (sdk::type_of(f.value) != sdk::ValueType::null) {
      seen |= bit;
    }
  }
  if (!r.literal("{")) {
    return false;
  }
  // Labels in place, as the general decoder does; ours are written sorted, so a key not above
  // the previous one (possibly a repeated one) leaves the fast path.
  auto it = out.labels.begin();
  if (!r.next_is('}')) {
    std::string_view previous;
    bool first = true;
    for (;;) {
      std::string_view k;
      std::string_view v;
      if (!r.string(k) || !r.literal(":") || !r.string(v) || (!first && !(previous < k))) {
        return false;
      }
      first = false;
      previous = k;
      if (it != out.labels.end() && it->first == k) {
        it->second.assign(v);
        ++it;
      } else {
        it = out.labels.erase(it, out.labels.end());
        out.labels.emplace(std::string(k), std::string(v));
        it = out.labels.end();
      }
      if (!r.literal(",")) {
        break;
      }
    }
  }
  if (!r.literal("}}") || !r.at_end()) {
    return false;
  }
  out.labels.erase(it, out.labels.end());
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (!fields[i].nullable && (seen & (std::uint64_t{1} << i)) == 0) {
      return false;  // a required field missing or null: the general decoder words it
    }
  }
  out.fields.resize(used);
  return true;
}

}  // namespace

bool JsonDecoder::decode(std::string_view json, sdk::Record& out, std::string& error,
                         SchemaLookup& lookup) {
  if (json.size() > max_bytes_) {
    error = "message of " + std::to_string(json.size()) + " bytes exceeds the limit of " +
            std::to_string(max_bytes_) + " bytes";
    return false;
  }
  if (fast_path_ && fast_decode(json, out, lookup)) {
    ++fast_decodes_;
    return true;
  }
  simdjson::dom::element doc;
  if (auto err = impl_->parser.parse(json.data(), json.size(), true).get(doc); err) {
    error = std::string("not JSON: ") + simdjson::error_message(err);
    return false;
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) {
    error = "not a JSON object (got " + std::string(element_type_name(doc.type())) + ")";
    return false;
  }
  // `out` may be a record used before (kafka_source decodes into records the pipeline has
  // finished with): its strings, fields and labels are overwritten in place, so decoding a
  // record like the previous one allocates nothing. Fields past `used` are dropped at the end.
  out.kind.clear();
  out.id.clear();
  out.time = {};
  std::size_t used = 0;
  bool have_schema = false;
  bool have_time = false;
  bool kind_seen = false;
  bool fields_before_kind = false;  // the schema was not known for them: convert again
  bool labels_seen = false;
  const KindSchema* schema = nullptr;
  std::size_t cursor = 0;  // our encoder writes fields in schema order: try the next one first
  std::uint64_t seen = 0;  // schema fields present and not null

  auto add_field = [&](std::string_view key, simdjson::dom::element value) {
    const FieldSchema* fs = nullptr;
    if (schema != nullptr) {
      const auto& fields = schema->fields;
      if (cursor < fields.size() && fields[cursor].name == key) {
        fs = &fields[cursor];
      } else {
        fs = schema->find(key);
      }
      if (fs != nullptr) {
        cursor = static_cast<std::size_t>(fs - fields.data()) + 1;
      }
    }
    sdk::Field& f = used < out.fields.size() ? out.fields[used] : out.fields.emplace_back();
    ++used;
    if (!convert(value, fs, key, f.value, error)) {
      return false;
    }
    f.name.assign(key);
    if (fs != nullptr && sdk::type_of(f.value) != sdk::ValueType::null) {
      const auto index = static_cast<std::size_t>(fs - schema->fields.data());
      seen |= index < 64 ? std::uint64_t{1} << index : 0;
    }
    return true;
  };

  // The declaration's hash goes with 'kind' to the lookup, wherever the key stands.
  std::string_view kind_hash;
  if (simdjson::dom::element h; obj.at_key("kind_hash").get(h) == simdjson::SUCCESS) {
    if (h.get_string().get(kind_hash) || !is_kind_hash(kind_hash)) {
      error = "'kind_hash' must be a string of 32 lowercase hex digits";
      return false;
    }
  }
  // One pass: the envelope comes first in what we write, so the schema is known before the
  // fields. Fields written before 'kind' are converted again once it is known.
  for (auto field : obj) {
    const std::string_view key = field.key;
    const auto v = field.value;
    switch (classify(key)) {
      case Key::field:
        if (!kind_seen) {
          fields_before_kind = true;
          continue;
        }
        if (!add_field(key, v)) {
          return false;
        }
        continue;
      case Key::schema: {
        std::int64_t s = 0;
        if (v.get_int64().get(s) || s != kWireSchema) {
          error = "unsupported 'schema' (expected 1)";
          return false;
        }
        have_schema = true;
        continue;
      }
      case Key::kind_hash: {
        std::string_view h;
        if (v.get_string().get(h) || h != kind_hash) {
          error = "'kind_hash' appears twice with different values";
          return false;
        }
        continue;
      }
      case Key::kind:
      case Key::id: {
        std::string_view s;
        if (v.get_string().get(s) || s.empty()) {
          error = "'" + std::string(key) + "' must be a non-empty string";
          return false;
        }
        if (key == "kind") {
          out.kind.assign(s);
          if (!kind_seen) {
            kind_seen = true;
            std::string lookup_error;
            schema = lookup.find(out.kind, kind_hash, lookup_error);
            if (schema == nullptr && !lookup_error.empty()) {
              error = std::move(lookup_error);
              return false;
            }
            out.fields.reserve(schema != nullptr ? schema->fields.size() : 16);
          }
        } else {
          out.id.assign(s);
        }
        continue;
      }
      case Key::time: {
        std::string_view s;
        std::optional<sdk::Timestamp> ts;
        if (v.get_string().get(s) || !(ts = parse_rfc3339(s))) {
          error = "'time' must be an RFC 3339 timestamp";
          return false;
        }
        out.time = *ts;
        have_time = true;
        continue;
      }
      case Key::labels: {
        simdjson::dom::object labels;
        if (v.get_object().get(labels)) {
          error = "'labels' must be an object of strings";
          return false;
        }
        // In place: labels like the previous record's (same keys, in order) only overwrite the
        // values; any other key is inserted and the old keys not seen are erased.
        // A second "labels" key adds to the first (it = end: nothing matched, nothing erased).
        auto it = labels_seen ? out.labels.end() : out.labels.begin();
        labels_seen = true;
        for (auto label : labels) {
          std::string_view s;
          if (label.value.get_string().get(s)) {
            error = "label '" + std::string(label.key) + "' must be a string";
            return false;
          }
          const std::string_view k = label.key;
          if (it != out.labels.end() && it->first == k) {
            it->second.assign(s);
            ++it;
            continue;
          }
          it = out.labels.erase(it, out.labels.end());
          out.labels.insert_or_assign(std::string(k), std::string(s));
          it = out.labels.end();
        }
        out.labels.erase(it, out.labels.end());
        continue;
      }
    }
  }
  if (!labels_seen) {
    out.labels.clear();
  }
  if (!have_schema) {
    error = "missing 'schema'";
    return false;
  }
  if (out.kind.empty()) {
    error = "missing 'kind'";
    return false;
  }
  if (out.id.empty()) {
    error = "missing 'id'";
    return false;
  }
  if (!is_uuid(out.id)) {
    error = "'id' is not a UUID";
    return false;
  }
  if (!have_time) {
    error = "missing 'time'";
    return false;
  }
  if (fields_before_kind) {
    // Someone else's field order: convert every field again, in document order.
    used = 0;
    cursor = 0;
    seen = 0;
    for (auto field : obj) {
      if (classify(field.key) == Key::field && !add_field(field.key, field.value)) {
        return false;
      }
    }
  }
  out.fields.resize(used);
  if (schema != nullptr) {
    for (std::size_t i = 0; i < schema->fields.size(); ++i) {
      const FieldSchema& fs = schema->fields[i];
      if (fs.nullable) {
        continue;
      }
      // Fields past the 64th (kinds declared at run time may have more) are looked up.
      const bool present = i < 64 ? (seen & (std::uint64_t{1} << i)) != 0
                                  : (out.find(fs.name) != nullptr &&
                                     sdk::type_of(*out.find(fs.name)) != sdk::ValueType::null);
      if (!present) {
        error = "field '" + std::string(fs.name) + "': required " +
                std::string(type_name(fs.type)) + " is missing";
        return false;
      }
    }
  }
  return true;
}

bool is_uuid(std::string_view s) noexcept {
  // 8-4-4-4-12 hex digits: the dashes at fixed places, then one table lookup per digit.
  static constexpr auto kHex = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) {
      t[static_cast<std::size_t>(c)] = true;
    }
    for (std::size_t c = 'a'; c <= 'f'; ++c) {
      t[c] = true;
      t[c - 'a' + 'A'] = true;
    }
    return t;
  }();
  if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') {
    return false;
  }
  bool ok = true;
  for (std::size_t i = 0; i < 36; ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    ok &= dash || kHex[static_cast<unsigned char>(s[i])];
  }
  return ok;
}

}  // namespace webmon::common
