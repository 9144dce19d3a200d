// dns_check plugin entry point: the descriptor (options in options.hpp, kind in
// dns_check_kind.hpp) and the factory.
#include "dns_check.hpp"
#include "dns_check_kind.hpp"
#include "options.hpp"

WEBMON_PLUGIN_SOURCE(webmon::plugins::dns_check::DnsCheckSource, "dns_check", "1.0.0",
                     "Checks DNS: queries a name for A, AAAA, CNAME, MX, TXT, NS or SOA at the "
                     "system resolver or a given server; rcode, answers, query time",
                     webmon::plugins::dns_check::kOptions,
                     webmon::sdk::emits(webmon::plugins::dns_check::kDnsCheckKinds))
