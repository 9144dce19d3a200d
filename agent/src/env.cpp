#include "env.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace webmon::agent {
namespace {

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
    if (!common::valid_env_name(name)) {
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
