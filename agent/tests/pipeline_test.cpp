// Pipeline loading and validation: every kind of configuration error names file, line and
// column and says what to fix.
#include "pipeline.hpp"

#include <gtest/gtest.h>

#include "pipeline_runner.hpp"

namespace webmon::agent {
namespace {

using testing::validate_pipeline;

constexpr const char* kGood = R"(
agent:
  name: a1
sources:
  gen:
    plugin: generator
    count: 10
transforms:
  labels:
    plugin: add_fields
    inputs: [gen]
    fields: { region: eu-west }
sinks:
  out:
    plugin: blackhole
    inputs: [labels]
)";

TEST(Pipeline, GoodPipelineValidates) { EXPECT_EQ(validate_pipeline(kGood), ""); }

TEST(Pipeline, ParsesStructureAndAgentSection) {
  const PipelineSpec spec = parse_pipeline(kGood, "p.yaml", process_env);
  EXPECT_EQ(spec.agent.name, "a1");
  EXPECT_EQ(spec.agent.shutdown_timeout.count(), 30'000);
  EXPECT_EQ(spec.agent.buffer_records, 10000U);
  ASSERT_EQ(spec.components.size(), 3U);
  EXPECT_EQ(spec.components[1].id, "labels");
  EXPECT_EQ(spec.components[1].plugin, "add_fields");
  EXPECT_EQ(spec.components[1].inputs, std::vector<std::string>{"gen"});
  EXPECT_EQ(spec.components[2].where.line, 15);
  EXPECT_EQ(spec.components[2].where.column, 5);
  // plugin and inputs are not options
  EXPECT_EQ(spec.components[1].options.find("plugin"), nullptr);
  EXPECT_NE(spec.components[1].options.find("fields"), nullptr);
}

TEST(Pipeline, SubstitutesEnvironmentInScalars) {
  ::setenv("WEBMON_T_COUNT", "7", 1);
  const PipelineSpec spec = parse_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: ${WEBMON_T_COUNT}\n"
      "    targets: ${WEBMON_T_UNSET:-3}\nsinks:\n  out:\n    plugin: blackhole\n"
      "    inputs: gen\n",
      "p.yaml", process_env);
  EXPECT_EQ(spec.components[0].options.find("count")->text(), "7");
  EXPECT_EQ(spec.components[0].options.find("targets")->text(), "3");
  ::unsetenv("WEBMON_T_COUNT");
}

struct ErrorCase {
  const char* name;
  const char* yaml;
  const char* expected;  // exact message
};

void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

class PipelineErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PipelineErrors, ExactMessage) {
  EXPECT_EQ(validate_pipeline(GetParam().yaml), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Config, PipelineErrors,
    ::testing::Values(
        ErrorCase{"MalformedYaml", "sources:\n  gen: [unclosed\n",
                  "pipeline.yaml:3:1: invalid YAML: end of sequence flow not found"},
        ErrorCase{"NotAMap", "- a\n- b\n",
                  "pipeline.yaml:1:1: a pipeline file is a map with 'sources', 'transforms', "
                  "'sinks' and an optional 'agent' section"},
        ErrorCase{"UnknownSection", "sourcs:\n  a: {}\n",
                  "pipeline.yaml:2:3: unknown section 'sourcs' (expected agent, sources, "
                  "transforms, sinks)"},
        ErrorCase{"DuplicateKey",
                  "sources:\n  gen:\n    plugin: generator\n    count: 1\n    count: 2\n",
                  "pipeline.yaml:5:5: duplicate key 'count'"},
        ErrorCase{"UnknownPlugin",
                  "sources:\n  gen:\n    plugin: generatr\nsinks:\n  out:\n    plugin: blackhole\n"
                  "    inputs: [gen]\n",
                  "pipeline.yaml:3:13: source 'gen': unknown plugin 'generatr': no generatr.so "
                  "in " WEBMON_TEST_PLUGIN_DIR " (see webmon-agent --list-plugins; add "
                  "directories with --plugin-dir)"},
        ErrorCase{"WrongKindOfPlugin",
                  "sources:\n  gen:\n    plugin: blackhole\nsinks:\n  out:\n    plugin: blackhole\n"
                  "    inputs: [gen]\n",
                  "pipeline.yaml:3:13: source 'gen': plugin 'blackhole' is a sink, not a source"},
        ErrorCase{"UnknownOptionSuggests",
                  "sources:\n  gen:\n    plugin: generator\n    cuont: 5\nsinks:\n  out:\n"
                  "    plugin: blackhole\n    inputs: [gen]\n",
                  "pipeline.yaml:4:12: source 'gen' (generator): unknown option 'cuont' (did you "
                  "mean 'count'?)"},
        ErrorCase{"UnknownOptionLists",
                  "sources:\n  gen:\n    plugin: generator\n    colour: blue\nsinks:\n  out:\n"
                  "    plugin: blackhole\n    inputs: [gen]\n",
                  "pipeline.yaml:4:13: source 'gen' (generator): unknown option 'colour' (valid "
                  "options: count rate targets batch_size failure_every kind)"},
        ErrorCase{"WrongType",
                  "sources:\n  gen:\n    plugin: generator\n    count: ten\nsinks:\n  out:\n"
                  "    plugin: blackhole\n    inputs: [gen]\n",
                  "pipeline.yaml:4:12: source 'gen' (generator): option 'count': expected an "
                  "integer, got 'ten'"},
        ErrorCase{"WrongDuration",
                  "sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n"
                  "    plugin: blackhole\n    inputs: [gen]\n    delay: 10 seconds\n",
                  "pipeline.yaml:8:12: sink 'out' (blackhole): option 'delay': expected a "
                  "duration such as 250ms, 10s, 5m or 1h, got '10 seconds'"},
        ErrorCase{"MissingRequired",
                  "sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n    plugin: file\n"
                  "    inputs: [gen]\n",
                  "pipeline.yaml:6:5: sink 'out' (file): missing required option 'path' (output "
                  "file, or - for standard output)"},
        ErrorCase{"PluginRefusesValue",
                  "sources:\n  gen:\n    plugin: generator\n    targets: 0\nsinks:\n  out:\n"
                  "    plugin: blackhole\n    inputs: [gen]\n",
                  "pipeline.yaml:4:14: source 'gen' (generator): option 'targets' must be "
                  "at least 1, got 0"},
        ErrorCase{"MissingPluginKey", "sources:\n  gen:\n    count: 1\n",
                  "pipeline.yaml:3:5: source 'gen': missing 'plugin:' (the plugin's name, see "
                  "webmon-agent --list-plugins)"},
        ErrorCase{"MissingVariable",
                  "sources:\n  gen:\n    plugin: generator\n    count: ${WEBMON_T_NOPE:?count "
                  "of records}\n",
                  "pipeline.yaml:4:12: environment variable WEBMON_T_NOPE is required: count of "
                  "records"},
        ErrorCase{"AgentOption", "agent:\n  shutdown_timeout: soon\n",
                  "pipeline.yaml:2:21: agent: option 'shutdown_timeout': expected a duration "
                  "such as 250ms, 10s, 5m or 1h, got 'soon'"}),
    [](const auto& tpi) { return std::string(tpi.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Topology, PipelineErrors,
    ::testing::Values(
        ErrorCase{"NoSources", "sinks:\n  out:\n    plugin: blackhole\n    inputs: [x]\n",
                  "pipeline.yaml:4:14: sink 'out': input 'x' is not a component of this "
                  "pipeline"},
        ErrorCase{"NoSourcesAtAll", "transforms: {}\nsinks: {}\n",
                  "pipeline.yaml:1:1: the pipeline has no sources (add a 'sources:' section)"},
        ErrorCase{"NoSinks", "sources:\n  gen:\n    plugin: generator\n",
                  "pipeline.yaml:1:1: the pipeline has no sinks (add a 'sinks:' section)"},
        ErrorCase{
            "SinkWithoutInputs",
            "sources:\n  gen:\n    plugin: generator\nsinks:\n  out:\n    plugin: blackhole\n",
            "pipeline.yaml:6:5: sink 'out': missing 'inputs:' (the ids of the components "
            "that feed it)"},
        ErrorCase{"SinkAsInput",
                  "sources:\n  gen:\n    plugin: generator\nsinks:\n  a:\n    plugin: blackhole\n"
                  "    inputs: [gen]\n  b:\n    plugin: blackhole\n    inputs: [a]\n",
                  "pipeline.yaml:10:14: sink 'b': input 'a' is a sink; only sources and "
                  "transforms can be inputs"},
        ErrorCase{"Cycle",
                  "sources:\n  gen:\n    plugin: generator\ntransforms:\n  t1:\n"
                  "    plugin: add_fields\n    inputs: [gen, t2]\n    fields: {a: b}\n  t2:\n"
                  "    plugin: add_fields\n    inputs: [t1]\n    fields: {a: b}\n"
                  "sinks:\n  out:\n    plugin: blackhole\n    inputs: [t2]\n",
                  "pipeline.yaml:6:5: transform 't1': inputs form a cycle: t1 -> t2 -> t1"},
        ErrorCase{"Unused",
                  "sources:\n  gen:\n    plugin: generator\n  idle:\n    plugin: generator\n"
                  "sinks:\n  out:\n    plugin: blackhole\n    inputs: [gen]\n",
                  "pipeline.yaml:5:5: source 'idle' feeds nothing: list it in the 'inputs' of a "
                  "transform or sink"},
        ErrorCase{"DuplicateId",
                  "sources:\n  x:\n    plugin: generator\nsinks:\n  x:\n    plugin: blackhole\n"
                  "    inputs: [x]\n",
                  "pipeline.yaml:6:5: sink 'x': the id 'x' is already used by another "
                  "component"},
        ErrorCase{"SourceWithInputs",
                  "sources:\n  gen:\n    plugin: generator\n    inputs: [gen]\n",
                  "pipeline.yaml:4:13: source 'gen': sources take no 'inputs'"}),
    [](const auto& tpi) { return std::string(tpi.param.name); });

TEST(Pipeline, UnreadableFile) {
  try {
    (void)load_pipeline("/nonexistent/p.yaml", process_env);
    FAIL();
  } catch (const sdk::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/p.yaml: cannot read the pipeline file (No such file or directory)");
  }
}

TEST(Pipeline, DefaultsAreFilledFromTheOptionsTable) {
  // generator's batch_size default (500) applies: 1,200 records arrive as 3 batches.
  auto run = testing::run_pipeline(
      "sources:\n  gen:\n    plugin: generator\n    count: 1200\nsinks:\n  out:\n"
      "    plugin: blackhole\n    inputs: [gen]\n");
  ASSERT_EQ(run.exit_code, 0) << run.config_error;
  EXPECT_EQ(run.counter("gen", "acked_delivered"), 3U);
  EXPECT_EQ(run.counter("out", "sent"), 1200U);
}

TEST(Pipeline, RefusesAliasBombsQuicklyWithAPosition) {
  // "Billion laughs": 9 levels of 10 aliases each would expand to 10^9 nodes.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) {
      text += (j == 0 ? "*a" : ", *a") + std::to_string(i - 1);
    }
    text += "]\n";
  }
  try {
    (void)parse_pipeline(text, "bomb.yaml", process_env);
    FAIL() << "accepted";
  } catch (const sdk::ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bomb.yaml:", 0), 0U) << msg;
    EXPECT_NE(msg.find("expands to more than 1000000 nodes (nested aliases?)"), std::string::npos)
        << msg;
  }
}

}  // namespace
}  // namespace webmon::agent
