#include "env.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace webmon::agent {
namespace {

bool valid_name(std::string_view name) {
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

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])) != 0) {
    ++b;
  }
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])) != 0) {
    --e;
  }
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) {
    return std::nullopt;
  }
  return std::string(v);
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
    if (!valid_name(name)) {
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

void load_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw std::runtime_error(path + ": cannot read env file");
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::string s = trim(line);
    if (s.empty() || s[0] == '#') {
      continue;
    }
    if (s.rfind("export ", 0) == 0) {
      s = trim(std::string_view(s).substr(7));
    }
    const std::size_t eq = s.find('=');
    const std::string where = path + ":" + std::to_string(number);
    if (eq == std::string::npos) {
      throw std::runtime_error(where + ": expected NAME=value");
    }
    const std::string name = trim(std::string_view(s).substr(0, eq));
    if (!valid_name(name)) {
      throw std::runtime_error(where + ": invalid variable name '" + name + "'");
    }
    std::string raw = trim(std::string_view(s).substr(eq + 1));
    std::string value;
    if (!raw.empty() && (raw[0] == '"' || raw[0] == '\'')) {
      const char q = raw[0];
      std::size_t k = 1;
      bool closed = false;
      for (; k < raw.size(); ++k) {
        const char ch = raw[k];
        if (ch == q) {
          closed = true;
          break;
        }
        if (q == '"' && ch == '\\' && k + 1 < raw.size()) {
          const char nx = raw[++k];
          value += nx == 'n' ? '\n' : nx == 't' ? '\t' : nx;
        } else {
          value += ch;
        }
      }
      if (!closed) {
        throw std::runtime_error(where + ": unterminated quote in value of " + name);
      }
      const std::string rest = trim(std::string_view(raw).substr(k + 1));
      if (!rest.empty() && rest[0] != '#') {
        throw std::runtime_error(where + ": unexpected text after the quoted value of " + name);
      }
    } else {
      if (const std::size_t hash = raw.find(" #"); hash != std::string::npos) {
        raw = trim(std::string_view(raw).substr(0, hash));
      }
      value = raw;
    }
    ::setenv(name.c_str(), value.c_str(), /*overwrite=*/0);
  }
}

}  // namespace webmon::agent
