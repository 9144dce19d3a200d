// A compact binary encoding of sdk::Record, used by the disk buffer's frames.
//
// Layout (little endian; "varint" = LEB128, unsigned; "zigzag" = signed varint):
//   u8 version (kCodecVersion)
//   varint len, kind bytes
//   varint len, id bytes
//   8 bytes time (int64 micros)
//   varint field count, then per field: varint len, name bytes, u8 type tag (sdk::ValueType),
//     value: null -> nothing; bool -> u8 0/1; int64 -> zigzag; double -> 8 bytes IEEE 754;
//     string -> varint len, bytes; timestamp -> 8 bytes int64 micros
//   varint label count, then per label: varint len, name bytes, varint len, value bytes
// Decoding checks every length against the input and refuses unknown versions and tags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "webmon/sdk/record.hpp"

namespace webmon::delivery {

/// Written as the first byte of every encoded record; decode refuses any other value.
inline constexpr std::uint8_t kCodecVersion = 1;

/// Appends the encoding of `record` to `out` (existing content is kept).
void encode_record(const sdk::Record& record, std::string& out);

/// Decodes exactly one record that spans all of `in` into `out`, reusing `out`'s allocations
/// (strings, the field vector). Returns false and sets `error` (when not null) on malformed
/// input; `out` is then unspecified.
bool decode_record(std::string_view in, sdk::Record& out, std::string* error = nullptr);

}  // namespace webmon::delivery
