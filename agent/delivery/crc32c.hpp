// CRC32C (Castagnoli), the checksum of the disk buffer's frames and ledger. SSE4.2 when the CPU
// has it (checked once at run time), a table otherwise; both give the same values.
#pragma once

#include <cstddef>
#include <cstdint>

namespace webmon::delivery {

/// Extends `crc` (0 to start) over `n` bytes: crc32c(crc32c(0, a), b) == crc32c(0, a + b).
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n) noexcept;

/// The table implementation, for tests comparing both paths.
std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t n) noexcept;

/// True when crc32c() uses the SSE4.2 instruction.
bool crc32c_hardware() noexcept;

}  // namespace webmon::delivery
