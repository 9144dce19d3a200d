# webmon_sdk_add_plugin(<name> <sources...>)
#
# Builds an out-of-tree webmon plugin: a loadable module <name>.so (no "lib" prefix), hidden
# visibility, C++20, linked against webmon::sdk. `cmake --install` puts it in
# <prefix>/lib/webmon/plugins; point the agent at it with --plugin-dir, agent.plugin_dirs or
# WEBMON_PLUGIN_PATH.
function(webmon_sdk_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_libraries(${name} PRIVATE webmon::sdk)
  if(NOT APPLE)
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
  include(GNUInstallDirs)
  install(TARGETS ${name} LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}/webmon/plugins")
endfunction()
