// ${VAR} substitution and dotenv loading.
#include "env.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "pipeline_runner.hpp"

namespace webmon::agent {
namespace {

EnvLookup fake(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

TEST(Env, SubstitutesSetVariables) {
  const auto env = fake({{"HOST", "kafka:9092"}, {"EMPTY", ""}});
  EXPECT_EQ(substitute("${HOST}", env), "kafka:9092");
  EXPECT_EQ(substitute("tcp://${HOST}/x", env), "tcp://kafka:9092/x");
  EXPECT_EQ(substitute("${EMPTY}", env), "");
  EXPECT_EQ(substitute("no vars", env), "no vars");
}

TEST(Env, DefaultsApplyWhenUnsetOrEmpty) {
  const auto env = fake({{"SET", "v"}, {"EMPTY", ""}});
  EXPECT_EQ(substitute("${UNSET:-fallback}", env), "fallback");
  EXPECT_EQ(substitute("${EMPTY:-fallback}", env), "fallback");
  EXPECT_EQ(substitute("${SET:-fallback}", env), "v");
  EXPECT_EQ(substitute("${UNSET:-}", env), "");
  EXPECT_EQ(substitute("${UNSET:-${SET}}", env), "v");
  EXPECT_EQ(substitute("${UNSET:-${ALSO_UNSET:-deep}}", env), "deep");
}

TEST(Env, DollarEscapes) {
  const auto env = fake({});
  EXPECT_EQ(substitute("price $$5", env), "price $5");
  EXPECT_EQ(substitute("a$b", env), "a$b");
  EXPECT_EQ(substitute("end$", env), "end$");
}

TEST(Env, UnsetVariableIsAnError) {
  const auto env = fake({});
  try {
    (void)substitute("${KAFKA_HOST}", env);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(),
                 "environment variable KAFKA_HOST is not set (set it, or write "
                 "${KAFKA_HOST:-default})");
  }
}

TEST(Env, RequiredVariableMessage) {
  const auto env = fake({});
  try {
    (void)substitute("${DATABASE_PASSWD:?set the database password}", env);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(),
                 "environment variable DATABASE_PASSWD is required: set the database password");
  }
}

TEST(Env, BrokenSyntax) {
  const auto env = fake({});
  EXPECT_THROW((void)substitute("${OPEN", env), std::runtime_error);
  EXPECT_THROW((void)substitute("${A:+x}", env), std::runtime_error);
  EXPECT_THROW((void)substitute("${1BAD}", env), std::runtime_error);
}

TEST(Env, DotenvFileLoadsWithoutOverridingEnvironment) {
  testing::TempDir dir;
  const std::string path = dir.write(".env",
                                     "# the original's settings\n"
                                     "KAFKA_HOST=broker:9093\n"
                                     "export KAFKA_TOPIC=\"web checks\" # comment\n"
                                     "DATABASE_PASSWD='p#ss $word'\n"
                                     "WEBMON_T_EXISTING=from-file\n"
                                     "\n"
                                     "DATABASE_PORT=5432 # trailing comment\n");
  ::unsetenv("KAFKA_HOST");
  ::unsetenv("KAFKA_TOPIC");
  ::unsetenv("DATABASE_PASSWD");
  ::unsetenv("DATABASE_PORT");
  ::setenv("WEBMON_T_EXISTING", "from-env", 1);
  load_env_file(path);
  EXPECT_STREQ(std::getenv("KAFKA_HOST"), "broker:9093");
  EXPECT_STREQ(std::getenv("KAFKA_TOPIC"), "web checks");
  EXPECT_STREQ(std::getenv("DATABASE_PASSWD"), "p#ss $word");
  EXPECT_STREQ(std::getenv("DATABASE_PORT"), "5432");
  EXPECT_STREQ(std::getenv("WEBMON_T_EXISTING"), "from-env");
  for (const char* n :
       {"KAFKA_HOST", "KAFKA_TOPIC", "DATABASE_PASSWD", "DATABASE_PORT", "WEBMON_T_EXISTING"}) {
    ::unsetenv(n);
  }
}

TEST(Env, DotenvErrorsNameFileAndLine) {
  testing::TempDir dir;
  const std::string path = dir.write("bad.env", "A=1\nthis line is wrong\n");
  try {
    load_env_file(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: expected NAME=value");
  }
  EXPECT_THROW(load_env_file(dir.path() + "/missing.env"), std::runtime_error);
  ::unsetenv("A");
}

}  // namespace
}  // namespace webmon::agent
