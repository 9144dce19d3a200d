#include "webmon/common/env.hpp"

#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace webmon::common {

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) {
    return std::nullopt;
  }
  return std::string(v);
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) {
    return false;
  }
  for (const char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
      return false;
    }
  }
  return true;
}

std::string substitute(std::string_view text, const EnvLookup& lookup) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (text[i + 1] != '{') {
      out += c;
      ++i;
      continue;
    }
    // The matching '}' (defaults may themselves contain ${...}).
    std::size_t close = std::string_view::npos;
    int depth = 1;
    for (std::size_t k = i + 2; k < text.size(); ++k) {
      if (text[k] == '$' && k + 1 < text.size() && text[k + 1] == '{') {
        ++depth;
        ++k;
      } else if (text[k] == '}' && --depth == 0) {
        close = k;
        break;
      }
    }
    if (close == std::string_view::npos) {
      throw std::runtime_error("unterminated '${' in '" + std::string(text) +
                               "' (write $$ for a literal $)");
    }
    const std::string_view expr = text.substr(i + 2, close - i - 2);
    std::string_view name = expr;
    std::string_view op;
    std::string_view arg;
    if (const std::size_t colon = expr.find(':'); colon != std::string_view::npos) {
      name = expr.substr(0, colon);
      op = expr.substr(colon, std::min<std::size_t>(2, expr.size() - colon));
      arg = expr.substr(std::min(expr.size(), colon + 2));
      if (op != ":-" && op != ":?") {
        throw std::runtime_error("unsupported '${" + std::string(expr) +
                                 "}': use ${VAR}, ${VAR:-default} or ${VAR:?message}");
      }
    }
    if (!valid_env_name(name)) {
      throw std::runtime_error("invalid variable name in '${" + std::string(expr) + "}'");
    }
    const std::optional<std::string> value = lookup(name);
    const bool set = value.has_value() && !value->empty();
    if (op == ":-") {
      out += set ? *value : substitute(arg, lookup);
    } else if (op == ":?") {
      if (!set) {
        throw std::runtime_error("environment variable " + std::string(name) + " is required: " +
                                 (arg.empty() ? std::string("not set") : std::string(arg)));
      }
      out += *value;
    } else {
      if (!value) {
        throw std::runtime_error("environment variable " + std::string(name) +
                                 " is not set (set it, or write ${" + std::string(name) +
                                 ":-default})");
      }
      out += *value;
    }
    i = close + 1;
  }
  return out;
}

}  // namespace webmon::common
