// Every plugin's sample.yaml is a valid pipeline, and every option in its options table
// (nested tables included) is documented in its README.md — a table row whose first cell is
// exactly `name`, with the table's default (or "required") in the default column — and shown
// in its sample.yaml as `name:` (the whole name, so `timeout:` is not found in
// `connect_timeout:`). STYLE.md: declare options once.
// Every record kind a plugin emits has a field table in a README (the plugin's own, or that of
// the plugin named after the kind) listing the declared fields in order, with their types,
// nullability and units.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "pipeline_runner.hpp"
#include "plugin_loader.hpp"

namespace webmon {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> plugin_folders() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(WEBMON_SOURCE_DIR "/plugins")) {
    if (fs::exists(e.path() / "CMakeLists.txt") &&
        fs::exists(testing::plugin_dir() + "/" + e.path().filename().string() + ".so")) {
      out.push_back(e.path().filename().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

/// A cell's value without surrounding backticks and quotes ("`\"-\"`" → "-").
std::string unquote(std::string s) {
  s = trim(std::move(s));
  for (const char q : {'`', '"', '\''}) {
    if (s.size() >= 2 && s.front() == q && s.back() == q) {
      s = s.substr(1, s.size() - 2);
    }
  }
  return s;
}

/// Option rows of every Markdown table whose header has an "option" column and a "default"
/// column: option name (the first cell without backticks) → the default cells of its rows.
/// With `lines`, also name → the whole row.
std::multimap<std::string, std::string> option_rows(
    const std::string& readme, std::multimap<std::string, std::string>* lines = nullptr) {
  std::multimap<std::string, std::string> out;
  std::istringstream in(readme);
  std::string line;
  int default_col = -1;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '|') {
      default_col = -1;
      continue;
    }
    std::vector<std::string> cells;
    std::string cell;
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|' && line[i - 1] != '\\') {
        cells.push_back(trim(cell));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    if (cells.empty()) {
      continue;
    }
    if (cells[0] == "option" || cells[0] == "key") {
      default_col = -1;
      for (std::size_t i = 0; i < cells.size(); ++i) {
        if (cells[i] == "default") {
          default_col = static_cast<int>(i);
        }
      }
      continue;
    }
    if (default_col < 0 || static_cast<std::size_t>(default_col) >= cells.size() ||
        cells[0].size() < 3 || cells[0].front() != '`' || cells[0].back() != '`') {
      continue;
    }
    out.emplace(cells[0].substr(1, cells[0].size() - 2), cells[default_col]);
    if (lines != nullptr) {
      lines->emplace(cells[0].substr(1, cells[0].size() - 2), line);
    }
  }
  return out;
}

/// What the README's default column must say for this option.
std::string expected_default(const sdk::OptionSpec& o) {
  if (o.default_value != nullptr) {
    return o.default_value;
  }
  return o.required ? "required" : "";
}

class PluginDocs : public ::testing::TestWithParam<std::string> {};

TEST_P(PluginDocs, SampleValidatesAndDocsCoverEveryOption) {
  const std::string dir = std::string(WEBMON_SOURCE_DIR) + "/plugins/" + GetParam();
  const std::string sample = testing::read_file(dir + "/sample.yaml");
  const std::string readme = testing::read_file(dir + "/README.md");
  ASSERT_FALSE(sample.empty()) << dir << "/sample.yaml is missing";
  ASSERT_FALSE(readme.empty()) << dir << "/README.md is missing";
  EXPECT_EQ(testing::validate_pipeline(sample), "") << dir << "/sample.yaml";
  EXPECT_NE(sample.find("plugin: " + GetParam()), std::string::npos);

  std::multimap<std::string, std::string> lines;
  const auto rows = option_rows(readme, &lines);
  const auto plugin = agent::load_plugin_file(testing::plugin_dir() + "/" + GetParam() + ".so");
  // A nested option has a row of its own, or is named as a whole word in its parent's row
  // (`shard` | map `{index, count}`).
  auto in_parent_row = [&](const std::string& parent, const std::string& name) {
    const std::regex word("(^|[^A-Za-z0-9_])" + name + "([^A-Za-z0-9_]|$)");
    const auto [first, last] = lines.equal_range(parent);
    return std::any_of(first, last,
                       [&](const auto& kv) { return std::regex_search(kv.second, word); });
  };
  auto check = [&](auto&& self, const sdk::OptionSpec* opts, std::size_t n,
                   const std::string& parent) -> void {
    for (std::size_t i = 0; i < n; ++i) {
      const std::string name = opts[i].name;
      const auto [first, last] = rows.equal_range(name);
      EXPECT_TRUE(first != last || (!parent.empty() && in_parent_row(parent, name)))
          << GetParam() << "/README.md has no option table row for `" << name << "`"
          << (parent.empty() ? "" : " (nor names it in the row of `" + parent + "`)");
      const std::string want = expected_default(opts[i]);
      if (first != last && !want.empty()) {
        bool found = false;
        std::string seen;
        for (auto it = first; it != last; ++it) {
          const std::string got = unquote(it->second);
          found = found || got == want || (want == "required" && got.find("required") == 0);
          seen += (seen.empty() ? "" : ", ") + it->second;
        }
        EXPECT_TRUE(found) << GetParam() << "/README.md: option `" << name << "` has default "
                           << seen << ", the options table says " << want;
      }
      // The whole name followed by a colon: not part of a longer key.
      const std::regex key("(^|[^A-Za-z0-9_])" + name + ":");
      EXPECT_TRUE(std::regex_search(sample, key))
          << GetParam() << "/sample.yaml does not show option " << name;
      if (opts[i].children != nullptr) {
        self(self, opts[i].children, opts[i].child_count, name);
      }
    }
  };
  check(check, plugin.descriptor->options, plugin.descriptor->option_count, "");
}

// The checks themselves: exact names, defaults compared.
TEST(PluginDocsCheck, RowsAreMatchedByExactNameWithTheirDefaults) {
  const auto rows = option_rows(
      "| option | type | default | description |\n|---|---|---|---|\n"
      "| `connect_timeout` | duration | `5s` | x |\n| `port` | int | required | y |\n\n"
      "| field | type |\n|---|---|\n| `timeout` | int |\n");
  EXPECT_EQ(rows.count("timeout"), 0U);  // only in a table without an option/default column
  ASSERT_EQ(rows.count("connect_timeout"), 1U);
  EXPECT_EQ(unquote(rows.find("connect_timeout")->second), "5s");
  EXPECT_EQ(rows.find("port")->second, "required");
  const std::regex key("(^|[^A-Za-z0-9_])timeout:");
  EXPECT_FALSE(std::regex_search("    connect_timeout: 5s\n", key));
  EXPECT_TRUE(std::regex_search("    # timeout: 5s\n", key));
}

struct FieldRow {
  std::string name;
  std::string type;
  std::string unit;
};

// The rows of the table headed "| field | type | unit | meaning |" that follows the first line
// mentioning "kind `<kind>`"; empty when there is none.
std::vector<FieldRow> readme_fields(const std::string& readme, const std::string& kind) {
  std::vector<FieldRow> rows;
  std::istringstream in(readme);
  std::string line;
  bool seen_kind = false;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (!seen_kind) {
      seen_kind = line.find("kind `" + kind + "`") != std::string::npos;
      continue;
    }
    if (!in_table) {
      in_table = line.rfind("| field | type | unit |", 0) == 0;
      continue;
    }
    if (line.rfind("|---", 0) == 0) {
      continue;
    }
    if (line.empty() || line[0] != '|') {
      break;
    }
    std::vector<std::string> cells;
    std::size_t start = 1;
    while (start < line.size()) {
      const auto end = line.find('|', start);
      if (end == std::string::npos) {
        break;
      }
      cells.push_back(trim(line.substr(start, end - start)));
      start = end + 1;
    }
    if (cells.size() >= 3 && cells[0].size() > 2 && cells[0].front() == '`') {
      rows.push_back({cells[0].substr(1, cells[0].size() - 2), cells[1], cells[2]});
    }
  }
  return rows;
}

// How a README writes a declared type: "double", "int / null", "map".
std::string readme_type(const sdk::FieldSpec& f) {
  const std::string base = f.type == sdk::FieldType::string_map ? "map" : sdk::to_string(f.type);
  return f.nullable && f.type != sdk::FieldType::string_map ? base + " / null" : base;
}

TEST_P(PluginDocs, ReadmeFieldTablesMatchTheKindDeclarations) {
  const auto plugin = agent::load_plugin_file(testing::plugin_dir() + "/" + GetParam() + ".so");
  const sdk::PluginDescriptor& d = *plugin.descriptor;
  for (std::size_t k = 0; k < d.emit_count; ++k) {
    const sdk::KindSpec& kind = d.emits[k];
    if (std::string_view(kind.name) == sdk::kAnyKind) {
      continue;
    }
    const std::string own =
        std::string(WEBMON_SOURCE_DIR) + "/plugins/" + GetParam() + "/README.md";
    const std::string named =
        std::string(WEBMON_SOURCE_DIR) + "/plugins/" + kind.name + "/README.md";
    auto rows = readme_fields(testing::read_file(own), kind.name);
    std::string where = own;
    if (rows.empty() && fs::exists(named)) {
      rows = readme_fields(testing::read_file(named), kind.name);
      where = named;
    }
    ASSERT_FALSE(rows.empty()) << "no README documents kind `" << kind.name << "` with a "
                               << "\"| field | type | unit | meaning |\" table (" << own << ")";
    // id and time are implicit in every record; the README lists them first.
    std::erase_if(rows, [](const FieldRow& r) { return r.name == "id" || r.name == "time"; });
    std::vector<std::string> declared_names;
    std::vector<std::string> readme_names;
    for (std::size_t i = 0; i < kind.field_count; ++i) {
      declared_names.push_back(kind.fields[i].name);
    }
    for (const auto& r : rows) {
      readme_names.push_back(r.name);
    }
    EXPECT_EQ(readme_names, declared_names)
        << where << ": the field table of kind `" << kind.name
        << "` must list the declared fields in the declared order";
    for (std::size_t i = 0; i < std::min(rows.size(), kind.field_count); ++i) {
      const sdk::FieldSpec& f = kind.fields[i];
      if (rows[i].name != f.name) {
        continue;
      }
      EXPECT_EQ(rows[i].type, readme_type(f)) << where << ": field `" << f.name << "`";
      EXPECT_EQ(rows[i].unit, f.unit) << where << ": unit of field `" << f.name << "`";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Plugins, PluginDocs, ::testing::ValuesIn(plugin_folders()),
                         [](const auto& tpi) { return tpi.param; });

}  // namespace
}  // namespace webmon
