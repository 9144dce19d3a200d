// tcp_check plugin entry point: the descriptor (options in options.hpp, kind in
// tcp_check_kind.hpp) and the factory.
#include "options.hpp"
#include "tcp_check.hpp"
#include "tcp_check_kind.hpp"

WEBMON_PLUGIN_SOURCE(webmon::plugins::tcp_check::TcpCheckSource, "tcp_check", "1.0.0",
                     "Checks TCP services: connect (IPv4/IPv6), optional TLS with certificate "
                     "expiry, optional payload and reply regex; connect, TLS and total time",
                     webmon::plugins::tcp_check::kOptions,
                     webmon::sdk::emits(webmon::plugins::tcp_check::kTcpCheckKinds))
