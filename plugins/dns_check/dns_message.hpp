// DNS messages (RFC 1035) for dns_check: building a query and parsing a reply into text
// answers. Small on purpose: one question, the record types dns_check supports, compression
// pointers followed with loop protection, every length checked against the message size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace webmon::plugins::dns_check {

/// Record types dns_check queries (values are the RFC 1035 / 3596 type codes).
enum class RecordType : std::uint16_t {
  a = 1,
  ns = 2,
  cname = 5,
  soa = 6,
  mx = 15,
  txt = 16,
  aaaa = 28,
};

/// "A", "AAAA", ... ; nullopt for an unknown name (case-insensitive).
std::optional<RecordType> parse_record_type(std::string_view name);
const char* to_string(RecordType t) noexcept;

/// "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", ... or "RCODE<n>".
std::string rcode_text(int rcode);
/// The rcode of a name such as "NXDOMAIN", or nullopt.
std::optional<int> parse_rcode(std::string_view name);

/// Checks a query name: labels of 1–63 characters, at most 253 characters in all (a
/// trailing dot is allowed). Returns an error text, empty when valid.
std::string check_name(std::string_view name);

/// A query for `name`/`type` with message id `id`, recursion desired or not, and an EDNS(0)
/// OPT record announcing a 1232-byte UDP payload.
std::vector<std::uint8_t> build_query(std::uint16_t id, std::string_view name, RecordType type,
                                      bool recursion_desired);

struct Answer {
  RecordType type{};
  std::uint32_t ttl = 0;
  std::string text;  ///< A/AAAA: address; CNAME/NS: name; MX: "pref name"; TXT: the strings
                     ///< concatenated; SOA: "mname rname serial refresh retry expire minimum"
};

struct Reply {
  std::uint16_t id = 0;
  int rcode = 0;
  bool authoritative = false;
  bool truncated = false;
  std::uint16_t answer_records = 0;  ///< every record of the answer section
  std::vector<Answer> answers;       ///< the answer records of the queried type
};

/// Parses a reply to a query for `name`/`type` (names compared case-insensitively, without
/// the trailing dot). Returns nullopt and sets `error` when the message is malformed, is not
/// a reply or answers another question. Names in answers have no trailing dot.
std::optional<Reply> parse_reply(const std::uint8_t* data, std::size_t size, std::string_view name,
                                 RecordType type, std::string& error);

}  // namespace webmon::plugins::dns_check
