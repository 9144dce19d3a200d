# webmon_add_plugin(<name> SOURCES <files...> [LIBRARIES <libs...>])
#
# Builds a plugin as a loadable module named <name>.so in the built-in plugin directory
# (build tree and install tree), with hidden visibility, against the SDK.
function(webmon_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${name}
    LIBRARY_OUTPUT_DIRECTORY "${WEBMON_PLUGIN_OUTPUT_DIR}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${name} PRIVATE webmon::sdk webmon_warnings ${ARG_LIBRARIES})
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  install(TARGETS ${name} LIBRARY DESTINATION "${WEBMON_PLUGIN_SUBDIR}" COMPONENT plugins)
  set_property(GLOBAL APPEND PROPERTY WEBMON_PLUGINS ${name})
endfunction()

# webmon_add_test(<name> SOURCES <files...> [LIBRARIES <libs...>]): a GoogleTest binary
# registered with ctest, one ctest test per test case.
function(webmon_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main webmon_warnings
                        ${ARG_LIBRARIES})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests")
  include(GoogleTest)
  set(_props TIMEOUT 300)
  if(ARG_LABELS)
    list(APPEND _props LABELS "${ARG_LABELS}")
  endif()
  # Test names are prefixed with the binary's name ("http_check_test.Options.Unknown"), so
  # `ctest -R http_check` selects a plugin's tests.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 30
                       TEST_PREFIX "${name}." PROPERTIES ${_props})
endfunction()
