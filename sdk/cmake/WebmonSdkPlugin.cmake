# webmon_sdk_add_plugin(<name> <sources...>)
#
# Builds an out-of-tree webmon plugin: a loadable module <name>.so (no "lib" prefix), hidden
# visibility, C++20, linked against webmon::sdk, with no undefined symbols.
#
# `cmake --install` puts it in WEBMON_PLUGIN_INSTALL_DIR, which defaults to
# WEBMON_SDK_PLUGIN_DIR: the built-in plugin directory of the agent installed with this SDK
# (<agent prefix>/<libdir>/webmon/plugins), where that agent finds it without --plugin-dir.
# Set -DWEBMON_PLUGIN_INSTALL_DIR=<dir> to install elsewhere (then name <dir> in
# agent.plugin_dirs, --plugin-dir or WEBMON_PLUGIN_PATH). A relative directory is relative to
# CMAKE_INSTALL_PREFIX. DESTDIR is honoured (packaging).
if(NOT DEFINED WEBMON_PLUGIN_INSTALL_DIR)
  if(DEFINED WEBMON_SDK_PLUGIN_DIR)
    set(_webmon_plugin_install_default "${WEBMON_SDK_PLUGIN_DIR}")
  else()
    include(GNUInstallDirs)
    set(_webmon_plugin_install_default "${CMAKE_INSTALL_LIBDIR}/webmon/plugins")
  endif()
  set(WEBMON_PLUGIN_INSTALL_DIR "${_webmon_plugin_install_default}" CACHE PATH
      "Where webmon_sdk_add_plugin() installs plugins (default: the agent's plugin directory)")
endif()

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
  # The agent refuses plugin files writable by group or others.
  install(TARGETS ${name} LIBRARY DESTINATION "${WEBMON_PLUGIN_INSTALL_DIR}"
          PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
endfunction()
