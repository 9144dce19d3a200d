// webmon SDK version and ABI identity.
//
// Contract: a plugin built against ABI major M, minor m loads into a host whose major is M and
// whose minor is >= m. The build key names the C++ facts that must match between host and
// plugin because SDK types (std::string, std::vector, ...) cross the boundary.
#pragma once

#include <cstdint>

/// Incremented on any incompatible change to SDK types or interfaces.
#define WEBMON_SDK_ABI_MAJOR 1
/// Incremented when the SDK grows compatibly: virtual functions appended at the end of a host
/// interface or of a component class, members appended to size-prefixed structs, new helpers.
/// docs/plugins.md ("How the ABI grows") lists what each minor added.
#define WEBMON_SDK_ABI_MINOR 4
/// The SDK release; its major.minor is the ABI's (the CMake package has the same version).
#define WEBMON_SDK_VERSION "1.4.0"

#define WEBMON_SDK_STR2(x) #x
#define WEBMON_SDK_STR(x) WEBMON_SDK_STR2(x)

#if defined(_LIBCPP_VERSION)
#define WEBMON_SDK_STDLIB "libc++"
#elif defined(__GLIBCXX__)
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
#define WEBMON_SDK_STDLIB "libstdc++-cxx11"
#else
#define WEBMON_SDK_STDLIB "libstdc++-old"
#endif
#else
#define WEBMON_SDK_STDLIB "unknown-stdlib"
#endif

#if defined(_GLIBCXX_DEBUG)
#define WEBMON_SDK_DEBUG_CONTAINERS "-debugcontainers"
#else
#define WEBMON_SDK_DEBUG_CONTAINERS ""
#endif

/// Build key: standard library and its ABI flavour, pointer width, container debug mode.
/// Compiler family is deliberately not part of it: GCC and Clang share the Itanium C++ ABI
/// and libstdc++ on Linux.
#define WEBMON_SDK_BUILD_KEY \
  WEBMON_SDK_STDLIB "-ptr" WEBMON_SDK_STR(__SIZEOF_POINTER__) WEBMON_SDK_DEBUG_CONTAINERS

namespace webmon::sdk {

inline constexpr std::uint32_t kAbiMajor = WEBMON_SDK_ABI_MAJOR;
inline constexpr std::uint32_t kAbiMinor = WEBMON_SDK_ABI_MINOR;
inline constexpr const char* kBuildKey = WEBMON_SDK_BUILD_KEY;
inline constexpr const char* kSdkVersion = WEBMON_SDK_VERSION;

}  // namespace webmon::sdk
