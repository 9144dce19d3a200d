// DNS message building and parsing for dns_check (see dns_message.hpp).
#include "dns_message.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>

namespace webmon::plugins::dns_check {
namespace {

constexpr RecordType kTypes[] = {RecordType::a,  RecordType::aaaa, RecordType::cname,
                                 RecordType::mx, RecordType::txt,  RecordType::ns,
                                 RecordType::soa};

constexpr const char* kRcodes[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                   "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                   "NXRRSET", "NOTAUTH", "NOTZONE"};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view strip_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') {
    s.remove_suffix(1);
  }
  return s;
}

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8U));
  out.push_back(static_cast<std::uint8_t>(v & 0xFFU));
}

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool u8(std::uint8_t& v) {
    if (pos_ + 1 > size_) {
      return false;
    }
    v = data_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (pos_ + 2 > size_) {
      return false;
    }
    v = static_cast<std::uint16_t>((data_[pos_] << 8U) | data_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    std::uint16_t hi = 0;
    std::uint16_t lo = 0;
    if (!u16(hi) || !u16(lo)) {
      return false;
    }
    v = (static_cast<std::uint32_t>(hi) << 16U) | lo;
    return true;
  }
  // A possibly compressed name at the current position; the position moves past it.
  bool name(std::string& out) {
    out.clear();
    std::size_t p = pos_;
    bool jumped = false;
    int jumps = 0;
    for (;;) {
      if (p >= size_) {
        return false;
      }
      const std::uint8_t len = data_[p];
      if ((len & 0xC0U) == 0xC0U) {
        if (p + 1 >= size_ || ++jumps > 32) {
          return false;  // truncated or a pointer loop
        }
        const std::size_t target = static_cast<std::size_t>((len & 0x3FU) << 8U) | data_[p + 1];
        if (!jumped) {
          pos_ = p + 2;
          jumped = true;
        }
        if (target >= size_) {
          return false;
        }
        p = target;
        continue;
      }
      if ((len & 0xC0U) != 0) {
        return false;  // reserved label types
      }
      if (len == 0) {
        if (!jumped) {
          pos_ = p + 1;
        }
        if (out.empty()) {
          out = ".";
        }
        return true;
      }
      if (p + 1 + len > size_ || out.size() + len + 1 > 255) {
        return false;
      }
      if (!out.empty()) {
        out += '.';
      }
      out.append(reinterpret_cast<const char*>(data_ + p + 1), len);
      p += 1 + static_cast<std::size_t>(len);
    }
  }
  bool skip(std::size_t n) {
    if (pos_ + n > size_) {
      return false;
    }
    pos_ += n;
    return true;
  }
  [[nodiscard]] std::size_t pos() const { return pos_; }
  void seek(std::size_t p) { pos_ = p; }
  [[nodiscard]] const std::uint8_t* at(std::size_t p) const { return data_ + p; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The text of one record's data (rdata at the reader's position, `len` bytes).
bool rdata_text(Reader& r, RecordType type, std::uint16_t len, std::string& out) {
  const std::size_t start = r.pos();
  const std::size_t end = start + len;
  bool ok = true;
  switch (type) {
    case RecordType::a:
    case RecordType::aaaa: {
      const std::size_t want = type == RecordType::a ? 4 : 16;
      if (len != want || !r.skip(len)) {
        return false;
      }
      char buf[INET6_ADDRSTRLEN] = {};
      ::inet_ntop(type == RecordType::a ? AF_INET : AF_INET6, r.at(start), buf, sizeof buf);
      out = buf;
      break;
    }
    case RecordType::cname:
    case RecordType::ns:
      ok = r.name(out);
      break;
    case RecordType::mx: {
      std::uint16_t pref = 0;
      std::string host;
      ok = r.u16(pref) && r.name(host);
      out = std::to_string(pref) + " " + host;
      break;
    }
    case RecordType::txt: {
      out.clear();
      while (ok && r.pos() < end) {
        std::uint8_t n = 0;
        ok = r.u8(n) && r.pos() + n <= end;
        if (ok) {
          out.append(reinterpret_cast<const char*>(r.at(r.pos())), n);
          ok = r.skip(n);
        }
      }
      break;
    }
    case RecordType::soa: {
      std::string mname;
      std::string rname;
      std::uint32_t v[5] = {};
      ok = r.name(mname) && r.name(rname);
      for (auto& x : v) {
        ok = ok && r.u32(x);
      }
      out = mname + " " + rname;
      for (const auto x : v) {
        out += " " + std::to_string(x);
      }
      break;
    }
  }
  if (!ok || r.pos() > end) {
    return false;
  }
  r.seek(end);
  return true;
}

}  // namespace

std::optional<RecordType> parse_record_type(std::string_view name) {
  const std::string l = lower(name);
  for (const RecordType t : kTypes) {
    if (l == lower(to_string(t))) {
      return t;
    }
  }
  return std::nullopt;
}

const char* to_string(RecordType t) noexcept {
  switch (t) {
    case RecordType::a:
      return "A";
    case RecordType::ns:
      return "NS";
    case RecordType::cname:
      return "CNAME";
    case RecordType::soa:
      return "SOA";
    case RecordType::mx:
      return "MX";
    case RecordType::txt:
      return "TXT";
    case RecordType::aaaa:
      return "AAAA";
  }
  return "?";
}

std::string rcode_text(int rcode) {
  if (rcode >= 0 && rcode < static_cast<int>(std::size(kRcodes))) {
    return kRcodes[rcode];
  }
  return "RCODE" + std::to_string(rcode);
}

std::optional<int> parse_rcode(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kRcodes)); ++i) {
    if (name == kRcodes[i]) {
      return i;
    }
  }
  return std::nullopt;
}

std::string check_name(std::string_view name) {
  const std::string_view n = strip_dot(name);
  if (n.empty() || n == ".") {
    return "the name is empty";
  }
  if (n.size() > 253) {
    return "the name is longer than 253 characters";
  }
  std::size_t start = 0;
  while (start <= n.size()) {
    const std::size_t end = std::min(n.find('.', start), n.size());
    const std::size_t len = end - start;
    if (len == 0) {
      return "the name has an empty label (two dots in a row, or a leading dot)";
    }
    if (len > 63) {
      return "label '" + std::string(n.substr(start, len)) + "' is longer than 63 characters";
    }
    start = end + 1;
  }
  return {};
}

std::vector<std::uint8_t> build_query(std::uint16_t id, std::string_view name, RecordType type,
                                      bool recursion_desired) {
  std::vector<std::uint8_t> out;
  out.reserve(32 + name.size());
  put16(out, id);
  put16(out, recursion_desired ? 0x0100 : 0x0000);
  put16(out, 1);  // questions
  put16(out, 0);
  put16(out, 0);
  put16(out, 1);  // additional: OPT
  const std::string_view n = strip_dot(name);
  std::size_t start = 0;
  while (start < n.size()) {
    const std::size_t end = std::min(n.find('.', start), n.size());
    out.push_back(static_cast<std::uint8_t>(end - start));
    out.insert(out.end(), n.begin() + static_cast<std::ptrdiff_t>(start),
               n.begin() + static_cast<std::ptrdiff_t>(end));
    start = end + 1;
  }
  out.push_back(0);
  put16(out, static_cast<std::uint16_t>(type));
  put16(out, 1);  // IN
  // OPT: root name, type 41, UDP payload 1232, extended rcode/flags 0, no options.
  out.push_back(0);
  put16(out, 41);
  put16(out, 1232);
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  return out;
}

std::optional<Reply> parse_reply(const std::uint8_t* data, std::size_t size, std::string_view name,
                                 RecordType type, std::string& error) {
  Reader r(data, size);
  Reply out;
  std::uint16_t flags = 0;
  std::uint16_t qd = 0;
  std::uint16_t an = 0;
  std::uint16_t ns = 0;
  std::uint16_t ar = 0;
  if (!r.u16(out.id) || !r.u16(flags) || !r.u16(qd) || !r.u16(an) || !r.u16(ns) || !r.u16(ar)) {
    error = "reply shorter than a DNS header (" + std::to_string(size) + " bytes)";
    return std::nullopt;
  }
  if ((flags & 0x8000U) == 0) {
    error = "message is a query, not a reply";
    return std::nullopt;
  }
  out.rcode = static_cast<int>(flags & 0x000FU);
  out.authoritative = (flags & 0x0400U) != 0;
  out.truncated = (flags & 0x0200U) != 0;
  out.answer_records = an;
  const std::string want = lower(strip_dot(name));
  for (std::uint16_t i = 0; i < qd; ++i) {
    std::string qname;
    std::uint16_t qtype = 0;
    std::uint16_t qclass = 0;
    if (!r.name(qname) || !r.u16(qtype) || !r.u16(qclass)) {
      error = "malformed question section";
      return std::nullopt;
    }
    if (lower(qname) != want || qtype != static_cast<std::uint16_t>(type)) {
      error = "reply answers another question (" + qname + ")";
      return std::nullopt;
    }
  }
  for (std::uint16_t i = 0; i < an; ++i) {
    std::string owner;
    std::uint16_t rtype = 0;
    std::uint16_t rclass = 0;
    std::uint32_t ttl = 0;
    std::uint16_t len = 0;
    if (!r.name(owner) || !r.u16(rtype) || !r.u16(rclass) || !r.u32(ttl) || !r.u16(len) ||
        r.pos() + len > size) {
      error = "malformed answer record " + std::to_string(i + 1);
      return std::nullopt;
    }
    if (rtype != static_cast<std::uint16_t>(type)) {
      r.skip(len);  // e.g. the CNAME records leading to the A records asked for
      continue;
    }
    Answer a;
    a.type = type;
    a.ttl = ttl;
    if (!rdata_text(r, type, len, a.text)) {
      error = "malformed data in answer record " + std::to_string(i + 1);
      return std::nullopt;
    }
    out.answers.push_back(std::move(a));
  }
  return out;
}

}  // namespace webmon::plugins::dns_check
