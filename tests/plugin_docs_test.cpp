// Every plugin's sample.yaml is a valid pipeline, and every option in its options table is
// documented in its README.md and shown in its sample.yaml (STYLE.md: declare options once).
// Every record kind a plugin emits has a field table in a README (the plugin's own, or that of
// the plugin named after the kind) listing the declared fields in order, with their types,
// nullability and units.
#include <gtest/gtest.h>

#include <filesystem>
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

class PluginDocs : public ::testing::TestWithParam<std::string> {};

TEST_P(PluginDocs, SampleValidatesAndDocsCoverEveryOption) {
  const std::string dir = std::string(WEBMON_SOURCE_DIR) + "/plugins/" + GetParam();
  const std::string sample = testing::read_file(dir + "/sample.yaml");
  const std::string readme = testing::read_file(dir + "/README.md");
  ASSERT_FALSE(sample.empty()) << dir << "/sample.yaml is missing";
  ASSERT_FALSE(readme.empty()) << dir << "/README.md is missing";
  EXPECT_EQ(testing::validate_pipeline(sample), "") << dir << "/sample.yaml";
  EXPECT_NE(sample.find("plugin: " + GetParam()), std::string::npos);

  const auto plugin = agent::load_plugin_file(testing::plugin_dir() + "/" + GetParam() + ".so");
  auto check = [&](auto&& self, const sdk::OptionSpec* opts, std::size_t n) -> void {
    for (std::size_t i = 0; i < n; ++i) {
      const std::string name = opts[i].name;
      EXPECT_NE(readme.find("`" + name + "`"), std::string::npos)
          << GetParam() << "/README.md does not document option `" << name << "`";
      EXPECT_NE(sample.find(name + ":"), std::string::npos)
          << GetParam() << "/sample.yaml does not show option " << name;
      if (opts[i].children != nullptr) {
        self(self, opts[i].children, opts[i].child_count);
      }
    }
  };
  check(check, plugin.descriptor->options, plugin.descriptor->option_count);
}

struct FieldRow {
  std::string name;
  std::string type;
  std::string unit;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

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
  const std::string base =
      f.type == sdk::FieldType::string_map ? "map" : sdk::to_string(f.type);
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
