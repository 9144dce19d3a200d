#include <gtest/gtest.h>
TEST(HttpCheckConfig, Placeholder) {}
