# Debian packages with CPack (`cpack -G DEB` in the build directory), included from the top
# CMakeLists.txt. Two packages:
#   webmon          the agent, the built-in plugins, /etc/webmon (conffiles), the systemd unit
#   webmon-sdk-dev  the SDK headers, its CMake package and the example plugin
# The agent and plugin install rules are the project's own (`cmake --install`); the files that
# only a package installs (absolute paths under /etc and /lib) are in components that are
# excluded from a plain `cmake --install`. See packaging/README.md.

set(WEBMON_DEB_RELEASE 1 CACHE STRING "Debian revision of the webmon packages")
set(_pkg "${CMAKE_CURRENT_LIST_DIR}")
set(_pkg_bin "${PROJECT_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${_pkg_bin}")

# --- files only the package installs -----------------------------------------------------
install(FILES "${PROJECT_SOURCE_DIR}/conf/producer.yaml" "${PROJECT_SOURCE_DIR}/conf/consumer.yaml"
              "${PROJECT_SOURCE_DIR}/conf/targets.yaml" "${PROJECT_SOURCE_DIR}/conf/tcp_targets.yaml"
              "${PROJECT_SOURCE_DIR}/conf/dns_targets.yaml"
        DESTINATION /etc/webmon COMPONENT deb_conf EXCLUDE_FROM_ALL)
# The environment file holds secrets: readable by root only (systemd reads it as root).
install(FILES "${_pkg}/webmon.env" DESTINATION /etc/webmon
        PERMISSIONS OWNER_READ OWNER_WRITE COMPONENT deb_conf EXCLUDE_FROM_ALL)
install(FILES "${_pkg}/webmon@.service" DESTINATION /lib/systemd/system
        COMPONENT deb_conf EXCLUDE_FROM_ALL)

# Debian documentation: copyright, changelog and the manual page, compressed as policy asks.
function(_webmon_gzip src dst)
  execute_process(COMMAND gzip -9nc "${src}" OUTPUT_FILE "${dst}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${src} failed")
  endif()
endfunction()
# The changelog's version is the project's (one version: webmon/sdk/version.hpp).
configure_file("${_pkg}/debian/changelog.in" "${_pkg_bin}/changelog" @ONLY)
_webmon_gzip("${_pkg_bin}/changelog" "${_pkg_bin}/changelog.Debian.gz")
_webmon_gzip("${_pkg}/webmon-agent.1" "${_pkg_bin}/webmon-agent.1.gz")
install(FILES "${_pkg_bin}/webmon-agent.1.gz" DESTINATION share/man/man1
        COMPONENT deb_conf EXCLUDE_FROM_ALL)
foreach(_doc IN ITEMS webmon webmon-sdk-dev)
  if(_doc STREQUAL "webmon")
    set(_comp deb_conf)
  else()
    set(_comp deb_sdk_doc)
  endif()
  install(FILES "${_pkg}/debian/copyright" "${_pkg_bin}/changelog.Debian.gz"
          DESTINATION share/doc/${_doc} COMPONENT ${_comp} EXCLUDE_FROM_ALL)
endforeach()
install(FILES "${_pkg}/debian/lintian-overrides" DESTINATION share/lintian/overrides RENAME webmon
        COMPONENT deb_conf EXCLUDE_FROM_ALL)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/sdk/examples/" DESTINATION share/doc/webmon-sdk-dev/examples
        COMPONENT deb_sdk_doc EXCLUDE_FROM_ALL)

# --- CPack --------------------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "webmon")
set(CPACK_PACKAGE_VENDOR "webmon")
# Empty: CPack would otherwise put it above each package's own synopsis (the first line of
# CPACK_DEBIAN_<PACKAGE>_DESCRIPTION).
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "webmon maintainers <maintainers@users.noreply.r-seed-60463e66.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}")

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
# "Unspecified" is the agent executable (agent/CMakeLists.txt installs it without a component).
# An install rule with a new component name needs it added here and to a group below.
set(CPACK_COMPONENTS_ALL Unspecified plugins deb_conf sdk deb_sdk_doc)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${WEBMON_DEB_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_DEBIAN_COMPRESSION_TYPE "xz")

# webmon: the libraries from the ELF files (dpkg-shlibdeps), plus passwd, whose useradd the
# postinst runs (not Essential; dpkg-shlibdeps cannot see it). CPack appends the former to it.
set(CPACK_DEBIAN_WEBMON_PACKAGE_NAME "webmon")
set(CPACK_DEBIAN_WEBMON_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_WEBMON_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_WEBMON_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_WEBMON_PACKAGE_SECTION "net")
# Descriptions: the first line is the synopsis; an empty line separates paragraphs.
set(CPACK_DEBIAN_WEBMON_DESCRIPTION "plugin-based website monitoring agent
webmon-agent runs a YAML pipeline of source, transform and sink plugins. The
built-in plugins check websites over HTTP(S), ship the results through Apache
Kafka and store them exactly once in PostgreSQL.

The package installs the pipelines producer.yaml and consumer.yaml in
/etc/webmon, settings in /etc/webmon/webmon.env, and the systemd unit
webmon@.service (webmon@producer, webmon@consumer).")
set(CPACK_DEBIAN_WEBMON_PACKAGE_CONTROL_EXTRA
    "${_pkg_bin}/webmon/conffiles" "${_pkg}/debian/postinst" "${_pkg}/debian/prerm"
    "${_pkg}/debian/postrm")
file(MAKE_DIRECTORY "${_pkg_bin}/webmon")
file(WRITE "${_pkg_bin}/webmon/conffiles"
     "/etc/webmon/consumer.yaml\n/etc/webmon/dns_targets.yaml\n/etc/webmon/producer.yaml\n"
     "/etc/webmon/targets.yaml\n/etc/webmon/tcp_targets.yaml\n"
     "/etc/webmon/webmon.env\n")

# webmon-sdk-dev: headers and CMake files only, the same on every architecture.
set(CPACK_DEBIAN_WEBMON-SDK-DEV_PACKAGE_NAME "webmon-sdk-dev")
set(CPACK_DEBIAN_WEBMON-SDK-DEV_PACKAGE_ARCHITECTURE "all")
set(CPACK_DEBIAN_WEBMON-SDK-DEV_PACKAGE_SECTION "libdevel")
set(CPACK_DEBIAN_WEBMON-SDK-DEV_PACKAGE_SUGGESTS "webmon (= ${PROJECT_VERSION}-${WEBMON_DEB_RELEASE})")
set(CPACK_DEBIAN_WEBMON-SDK-DEV_DESCRIPTION "SDK for webmon plugins
C++20 headers (standard library only) and the CMake package
(find_package(webmon_sdk)) to build source, transform and sink plugins that
webmon-agent loads at run time, with an example plugin.")

include(CPack)
cpack_add_component_group(webmon)
cpack_add_component_group(webmon-sdk-dev)
cpack_add_component(Unspecified GROUP webmon)
cpack_add_component(plugins GROUP webmon)
cpack_add_component(deb_conf GROUP webmon)
cpack_add_component(sdk GROUP webmon-sdk-dev)
cpack_add_component(deb_sdk_doc GROUP webmon-sdk-dev)
