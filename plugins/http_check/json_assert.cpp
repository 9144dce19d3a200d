// http_check's JSON body assertions (`json: [{pointer, equals | regex}]`): parses the body with
// nlohmann::json and compares the value each JSON pointer (RFC 6901) names.
//
// A value's text, compared with `equals` and matched by `regex`: a string's content (no quotes,
// escapes decoded), any other value as compact JSON (`42`, `1.5`, `true`, `null`,
// `{"a":1}`). The configuration is YAML text, so `equals: 200` holds for the number 200 and the
// string "200" alike.
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "http_check.hpp"

namespace webmon::plugins::http_check {
namespace {

using nlohmann::json;

std::string text_of(const json& v) {
  if (v.is_string()) {
    return v.get<std::string>();
  }
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A value for a message: quoted when it is a string, cut at 200 bytes.
std::string shown(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 200) {
    s = s.substr(0, 200) + "...";
  }
  return s;
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string plain(const json::exception& e) {
  std::string m = e.what();
  if (!m.empty() && m.front() == '[') {
    if (const auto end = m.find("] "); end != std::string::npos) {
      m = m.substr(end + 2);
    }
  }
  return m;
}

}  // namespace

void check_json_pointer(const std::string& pointer) {
  try {
    (void)json::json_pointer(pointer);
  } catch (const json::exception& e) {
    throw std::invalid_argument("'" + pointer + "' is not a JSON pointer (" + plain(e) +
                                "); write e.g. /status or /items/0/id");
  }
}

std::optional<std::pair<std::string_view, std::string>> check_json(
    const std::vector<JsonAssertion>& assertions, std::string_view body) {
  if (assertions.empty()) {
    return std::nullopt;
  }
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    return std::pair<std::string_view, std::string>{"json_invalid",
                                                    "body is not JSON: " + plain(e)};
  }
  for (const auto& a : assertions) {
    const json* value = nullptr;
    try {
      value = &doc.at(json::json_pointer(a.pointer));
    } catch (const json::exception&) {
      value = nullptr;  // missing member, index out of range or not a number
    }
    if (value == nullptr) {
      return std::pair<std::string_view, std::string>{
          "json_mismatch", "JSON pointer " + a.pointer + " not found in the body"};
    }
    const std::string text = text_of(*value);
    if (a.equals && text != *a.equals) {
      return std::pair<std::string_view, std::string>{
          "json_mismatch",
          "JSON " + a.pointer + " is " + shown(*value) + ", expected " +
              json(*a.equals).dump(-1, ' ', false, json::error_handler_t::replace)};
    }
    if (a.regex != nullptr && !a.regex->search(text)) {
      return std::pair<std::string_view, std::string>{
          "json_mismatch", "JSON " + a.pointer + " is " + shown(*value) +
                               ", which does not match regex '" + a.regex->pattern() + "'"};
    }
  }
  return std::nullopt;
}

}  // namespace webmon::plugins::http_check
