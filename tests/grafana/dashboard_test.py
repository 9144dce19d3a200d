#!/usr/bin/env python3
"""conf/grafana against the real schema: every panel's SQL, expanded the way Grafana expands
it, runs on the local stack's PostgreSQL after a generator → postgres_sink run (http_check) and
three runs of the real tcp_check, dns_check and alert plugins → postgres_sink against loopback
servers (a TCP greeter, a TLS server, a refused port, dnsmasq, a silent UDP port), and returns
rows with the columns the panel expects and the targets selected; the tcp_check, dns_check and
alert panels show what the plugins stored (error classes, days left, incidents).

Grafana's expansion, implemented here from its rules:
  1. Template variables (the frontend's templateSrv with the SQL data sources'
     interpolateVariable): $var, ${var}, [[var]]; for a multi-value or include-all variable
     every value is quoted as an SQL literal (' doubled) and the values joined with ','
     ("All" without a custom all value means every value); a plain single-value variable
     only has its ' doubled. $__interval and $__interval_ms are variables too.
  2. The SQL engine's global substitutions: $__interval_ms, $__interval, $__unixEpochFrom(),
     $__unixEpochTo().
  3. The PostgreSQL macro engine: every `$name(args)` (regex \\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\),
     arguments split on ',' and trimmed): $__time, $__timeEpoch, $__timeFilter (col BETWEEN
     'from' AND 'to', RFC 3339 UTC with nanoseconds trimmed), $__timeFrom, $__timeTo,
     $__timeGroup (floor(extract(epoch from col)/S)*S; turned into $__timeGroupAlias when a ','
     follows, for pre-5.3 dashboards), $__timeGroupAlias (… AS "time"), $__unixEpochFilter,
     $__unixEpochNanoFilter/From/To, $__unixEpochGroup(Alias); anything else is an error.
  The interval is the frontend's: roundInterval((to - from) / max data points), at least the
  data source's timeInterval (1m in the provisioning file), written as Grafana writes it
  (secondsToHms: the largest whole unit, "10m", "2h").

Usage: dashboard_test.py WEBMON_AGENT SOURCE_DIR
"""
import csv
import grp
import io
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

MAX_DATA_POINTS = 1000  # a panel about 1000 px wide
MIN_INTERVAL_MS = 60_000  # jsonData.timeInterval: 1m

# Each panel: the columns it must return (in order), the column holding target names (None when
# it has none) and the SQL giving every target the panel can show (checked against the selection:
# exactly those selected, or only a subset for "subset" panels). "empty": may legitimately
# return no rows after a healthy run.
HTTP = "SELECT DISTINCT target FROM webmon.http_check"
TCP = "SELECT DISTINCT target FROM webmon.tcp_check"
DNS = "SELECT DISTINCT target FROM webmon.dns_check"
PANELS = {
    "Uptime per target": dict(cols=["target", "uptime_pct"], target="target", present=HTTP),
    "Uptime and response time per target": dict(
        cols=["target", "checks", "failures", "uptime_pct", "avg_ms", "max_ms"], target="target",
        present=HTTP),
    "Response time p50 / p95 / p99 per target": dict(
        cols=["time", "metric", "p50_ms", "p95_ms", "p99_ms"], target="metric", present=HTTP),
    "Phase timings (stacked)": dict(
        cols=["time", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"]),
    "Failures by error class": dict(cols=["time", "metric", "failures"]),
    "Certificate expiry (days left)": dict(
        cols=["target", "days_left", "not_after", "issuer", "url"], target="target",
        present=HTTP + " WHERE tls_cert_not_after IS NOT NULL"),
    "Lateness (check start vs schedule)": dict(cols=["time", "p99_lateness_ms", "max_lateness_ms"]),
    "Latest failures": dict(cols=["time", "target", "error", "status_code", "error_message"],
                            target="target", present=HTTP + " WHERE NOT success", subset=True),
    "Rejected records": dict(cols=["reason", "records", "last_rejected"], empty=True),
    "TCP uptime per target": dict(cols=["target", "uptime_pct"], target="target", present=TCP),
    "TCP failures by error class": dict(cols=["time", "metric", "failures"]),
    "TCP total time p50 / p95 / p99 per target": dict(
        cols=["time", "metric", "p50_ms", "p95_ms", "p99_ms"], target="metric", present=TCP),
    "TCP connect time p50 / p95 / p99 per target": dict(
        cols=["time", "metric", "p50_ms", "p95_ms", "p99_ms"], target="metric",
        present=TCP + " WHERE connect_ms IS NOT NULL"),
    "TCP certificate expiry (days left)": dict(
        cols=["target", "days_left", "not_after", "issuer", "address"], target="target",
        present=TCP + " WHERE tls_cert_not_after IS NOT NULL"),
    "DNS uptime per target": dict(cols=["target", "uptime_pct"], target="target", present=DNS),
    "DNS failures by rcode / error class": dict(cols=["time", "metric", "failures"]),
    "DNS query time p50 / p95 / p99 per target": dict(
        cols=["time", "metric", "p50_ms", "p95_ms", "p99_ms"], target="metric", present=DNS),
    "Alert incidents": dict(
        cols=["target", "check_kind", "state", "since", "resolved", "duration_ms", "last_error",
              "last_error_message"], target="target",
        present="SELECT DISTINCT target FROM webmon.alert"),
    "Firing incidents": dict(cols=["time", "firing"]),
}
# Uptime panels: the same figures from the raw table and both views, and from a direct count.
UPTIME = {"Uptime per target": "http_check", "TCP uptime per target": "tcp_check",
          "DNS uptime per target": "dns_check"}


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


# --- Grafana's expansion -------------------------------------------------------------------

def round_interval_ms(ms):
    """Grafana's rangeutil.roundInterval."""
    table = [(10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
             (1500, 1000), (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000),
             (25000, 20000), (45000, 30000), (90000, 60000), (210000, 120000),
             (450000, 300000), (750000, 600000), (1050000, 900000), (1500000, 1200000),
             (2700000, 1800000), (5400000, 3600000), (9000000, 7200000),
             (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
             (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000)]
    for limit, value in table:
        if ms < limit:
            return value
    return 31536000000


def seconds_to_hms(seconds):
    """Grafana's secondsToHms: the largest whole unit."""
    for unit, size in (("y", 31536000), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s" % (seconds // size, unit)
    if seconds >= 1:
        return "%ds" % seconds
    ms = int(round(seconds * 1000))
    return "%dms" % ms if ms else "less than a millisecond"


def interval_for(t_from, t_to):
    ms = round_interval_ms((t_to - t_from).total_seconds() * 1000 / MAX_DATA_POINTS)
    ms = max(ms, MIN_INTERVAL_MS)
    return ms, seconds_to_hms(ms / 1000)


def parse_interval(text):
    """gtime.ParseInterval for the forms the dashboards use."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text.strip().strip("'"))
    if not m:
        raise ValueError("error parsing interval %s" % text)
    n = int(m.group(1))
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
                "y": 31536000}[m.group(2)]


def rfc3339nano(t):
    """Go's time.RFC3339Nano for a UTC time: trailing zeros of the fraction removed."""
    s = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = "%06d" % t.microsecond
    frac = frac.rstrip("0")
    return s + ("." + frac if frac else "") + "Z"


def quote_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def interpolate_variables(sql, variables):
    """variables: name -> (value or list of values, definition dict)."""
    def format_value(name):
        value, definition = variables[name]
        if isinstance(value, list):
            return ",".join(quote_literal(v) for v in value)
        if definition.get("multi") or definition.get("includeAll"):
            return quote_literal(value)
        return str(value).replace("'", "''")

    pattern = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(4)
        if name not in variables:
            return m.group(0)  # unknown: left for the backend (macros)
        return format_value(name)

    return pattern.sub(repl, sql)


def expand(sql, t_from, t_to, variables):
    interval_ms, interval_text = interval_for(t_from, t_to)
    all_vars = dict(variables)
    all_vars["__interval"] = (interval_text, {})
    all_vars["__interval_ms"] = (str(interval_ms), {})
    sql = interpolate_variables(sql, all_vars)
    # sqleng.Interpolate
    sql = sql.replace("$__interval_ms", str(interval_ms))
    sql = sql.replace("$__interval", interval_text)
    sql = sql.replace("$__unixEpochFrom()", str(int(t_from.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(t_to.timestamp())))
    # postgresMacroEngine.Interpolate
    f, t = rfc3339nano(t_from), rfc3339nano(t_to)
    errors = []

    def macro(m):
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        if name == "__timeGroup":
            end = m.end()
            if end < len(sql) and sql[end] == ",":
                name = "__timeGroupAlias"
        if name == "__time":
            return '%s AS "time"' % args[0]
        if name == "__timeEpoch":
            return 'extract(epoch from %s) as "time"' % args[0]
        if name == "__timeFilter":
            return "%s BETWEEN '%s' AND '%s'" % (args[0], f, t)
        if name == "__timeFrom":
            return "'%s'" % f
        if name == "__timeTo":
            return "'%s'" % t
        if name in ("__timeGroup", "__timeGroupAlias", "__unixEpochGroup", "__unixEpochGroupAlias"):
            if len(args) < 2:
                errors.append("macro %s needs time column and interval" % name)
                return "macro_error()"
            s = parse_interval(args[1])
            s_text = ("%d" % s) if float(s).is_integer() else repr(s)
            if name.startswith("__timeGroup"):
                out = "floor(extract(epoch from %s)/%s)*%s" % (args[0], s_text, s_text)
            else:
                out = "floor((%s)/%s)*%s" % (args[0], s_text, s_text)
            return out + (' AS "time"' if name.endswith("Alias") else "")
        if name == "__unixEpochFilter":
            return "%s >= %d AND %s <= %d" % (args[0], int(t_from.timestamp()), args[0], int(t_to.timestamp()))
        if name == "__unixEpochNanoFilter":
            return "%s >= %d AND %s <= %d" % (args[0], int(t_from.timestamp() * 1e9), args[0], int(t_to.timestamp() * 1e9))
        if name == "__unixEpochNanoFrom":
            return "%d" % int(t_from.timestamp() * 1e9)
        if name == "__unixEpochNanoTo":
            return "%d" % int(t_to.timestamp() * 1e9)
        errors.append('unknown macro "%s"' % name)
        return "macro_error()"

    out = re.sub(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)", macro, sql)
    if errors:
        raise ValueError("; ".join(errors))
    return out


def self_test():
    """Grafana's own documented examples."""
    t0 = datetime(2017, 4, 21, 5, 1, 17, tzinfo=timezone.utc)
    t1 = datetime(2017, 4, 21, 5, 6, 17, tzinfo=timezone.utc)
    cases = [
        ("$__timeFilter(time_column)",
         "time_column BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
        ("$__timeGroup(time_column,'5m')", "floor(extract(epoch from time_column)/300)*300"),
        ("$__timeGroupAlias(time_column,'5m')", 'floor(extract(epoch from time_column)/300)*300 AS "time"'),
        ("SELECT $__timeGroup(time_column,'5m'), 1", 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", 1'),
        ("$__time(dateColumn)", 'dateColumn AS "time"'),
        ("$__unixEpochFilter(c)", "c >= 1492750877 AND c <= 1492751177"),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("x IN ($target)", "x IN ('a','b''c')"),
        ("$__interval $__interval_ms", "1m 60000"),
    ]
    variables = {"target": (["a", "b'c"], {"multi": True})}
    for sql, want in cases:
        got = expand(sql, t0, t1, variables)
        if got != want:
            fail("expansion of %r: %r, expected %r" % (sql, got, want))
    if interval_for(t0, t0 + timedelta(days=7))[1] != "10m":
        fail("interval for 7 days: %s" % (interval_for(t0, t0 + timedelta(days=7)),))
    if interval_for(t0, t0 + timedelta(days=90))[1] != "2h":
        fail("interval for 90 days: %s" % (interval_for(t0, t0 + timedelta(days=90)),))
    if rfc3339nano(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone.utc)) != "2026-01-02T03:04:05.12Z":
        fail("RFC 3339 formatting")


# --- the stack -----------------------------------------------------------------------------

def stack_env(src):
    out = subprocess.run([os.path.join(src, "scripts", "stack"), "env"], capture_output=True,
                         text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


class Db:
    def __init__(self, env, db):
        self.conn = ("host=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s" %
                     (env["DATABASE_HOST"], env["DATABASE_PORT"], db, env["DATABASE_USER"],
                      env["DATABASE_SSLROOTCERT"]))
        self.env = dict(os.environ, PGPASSWORD=env["DATABASE_PASSWD"])

    def query(self, sql):
        p = subprocess.run(["psql", "-X", "--csv", "-v", "ON_ERROR_STOP=1", self.conn, "-c", sql],
                           capture_output=True, text=True, env=self.env, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip())
        rows = list(csv.reader(io.StringIO(p.stdout)))
        return rows[0], rows[1:]

    MARK = "@@webmon-grafana-test query "

    def queries(self, sqls):
        """Several queries in one session (a connection per query costs more than most of
        them): [(columns, rows)], or RuntimeError(index, message) for the first refused."""
        script = "".join("\\echo '%s%d'\n%s\n;\n" % (self.MARK, i, sql.rstrip().rstrip(";"))
                         for i, sql in enumerate(sqls))
        p = subprocess.run(["psql", "-X", "--csv", "-v", "ON_ERROR_STOP=1", self.conn, "-f", "-"],
                           input=script, capture_output=True, text=True, env=self.env, timeout=300)
        parts = p.stdout.split(self.MARK)[1:]
        if p.returncode != 0:
            raise RuntimeError(max(len(parts) - 1, 0), p.stderr.strip())
        out = []
        for i, part in enumerate(parts):
            number, _, text = part.partition("\n")
            if int(number) != i:
                raise RuntimeError(i, "psql output out of order")
            rows = list(csv.reader(io.StringIO(text)))
            out.append((rows[0], rows[1:]))
        return out


def sink_yaml(env, db, inputs):
    return """sinks:
  pg:
    plugin: postgres_sink
    inputs: [%(inputs)s]
    host: %(DATABASE_HOST)s
    port: %(DATABASE_PORT)s
    database: %(db)s
    user: %(DATABASE_USER)s
    password: ${DATABASE_PASSWD}
    sslmode: verify-full
    sslrootcert: %(DATABASE_SSLROOTCERT)s
""" % dict(env, db=db, inputs=", ".join(inputs))


def run_agent(agent, env, pipeline, what):
    p = subprocess.run([agent, "--pipeline", pipeline], capture_output=True, text=True,
                       env=dict(os.environ, DATABASE_PASSWD=env["DATABASE_PASSWD"]), timeout=300)
    if p.returncode != 0:
        fail("%s exited %d:\n%s" % (what, p.returncode, p.stderr[-3000:]))


def load_data(agent, env, db, work):
    pipeline = os.path.join(work, "load.yaml")
    with open(pipeline, "w") as f:
        f.write("sources:\n"
                "  gen: { plugin: generator, count: 3000, targets: 6, failure_every: 7 }\n" +
                sink_yaml(env, db, ["gen"]))
    run_agent(agent, env, pipeline, "generator → postgres_sink")


class Greeter:
    """A TCP server on 127.0.0.1 that sends `reply` (changeable) to every connection and closes it;
    with `tls` (cert, key) it does a TLS handshake instead and waits for the client to close."""

    def __init__(self, reply=b"", tls=None):
        self.reply = reply
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(30)
            if self.ctx:
                conn = self.ctx.wrap_socket(conn, server_side=True)
                while conn.recv(4096):
                    pass
            else:
                conn.sendall(self.reply)
        except OSError:
            pass  # the client's business (a failed handshake is its result)
        finally:
            conn.close()


def dns_query(name):
    """A DNS query for `name` IN A (RFC 1035 wire format)."""
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


class Dnsmasq:
    """Debian's dnsmasq on 127.0.0.1:<free port>, authoritative for z.test (as dns_check_test)."""

    def __init__(self):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # released just before dnsmasq binds it
        exe = shutil.which("dnsmasq", path="/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
        if not exe:
            fail("dnsmasq not found: scripts/bootstrap installs dnsmasq-base")
        self.proc = subprocess.Popen(
            [exe, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--pid-file=", "--user=" + pwd.getpwuid(os.getuid()).pw_name,
             "--group=" + grp.getgrgid(os.getgid()).gr_name, "--port=%d" % self.port,
             "--listen-address=127.0.0.1", "--bind-interfaces", "--auth-zone=z.test",
             "--auth-server=ns.z.test,lo", "--host-record=a.z.test,10.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Wait until it answers (the deadline only bounds a hang).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail("dnsmasq exited %d: %s" % (self.proc.returncode, self.proc.stderr.read()))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(dns_query("a.z.test"), ("127.0.0.1", self.port))
                if s.recv(512):
                    return
            except OSError:
                pass
            finally:
                s.close()
        fail("dnsmasq did not answer on 127.0.0.1:%d" % self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load_checks(agent, env, db, work):
    """The real tcp_check, dns_check and alert plugins into postgres_sink: three runs of
    `once: true` checks of loopback servers, so that every kind's table has rows at several
    times, two incidents per kind fire and one of them resolves."""
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=webmon grafana test",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    up = Greeter()
    flip = Greeter(b"DOWN\n")
    tls = Greeter(tls=(cert, key))
    closed = socket.socket()  # bound, never listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a DNS server that never answers
    silent.bind(("127.0.0.1", 0))
    dns = Dnsmasq()
    pipeline = os.path.join(work, "checks.yaml")
    with open(pipeline, "w") as f:
        f.write("""sources:
  tcp:
    plugin: tcp_check
    once: true
    targets:
      - { name: tcp-up, host: 127.0.0.1, port: %(up)d }
      - { name: tcp-flip, host: 127.0.0.1, port: %(flip)d, expect: "^UP" }
      - { name: tcp-closed, host: 127.0.0.1, port: %(closed)d }
      - { name: tcp-tls, host: 127.0.0.1, port: %(tls)d, tls: true, ca_file: %(cert)s }
  dns:
    plugin: dns_check
    once: true
    server: 127.0.0.1:%(dns)d
    targets:
      - { name: dns-a, query: a.z.test, expect: [10.0.0.1] }
      - { name: dns-nx, query: nx.z.test }
      - { name: dns-timeout, query: a.z.test, server: "127.0.0.1:%(silent)d", timeout: 300ms }
transforms:
  alerts:
    plugin: alert
    inputs: [tcp, dns]
    pass_through: false
    failure_threshold: 1
    success_threshold: 1
    state_file: %(state)s
""" % dict(up=up.port, flip=flip.port, closed=closed.getsockname()[1], tls=tls.port, cert=cert,
           dns=dns.port, silent=silent.getsockname()[1], state=os.path.join(work, "alert.json"))
                + sink_yaml(env, db, ["tcp", "dns", "alerts"]))
    try:
        for run in range(3):
            if run == 2:
                flip.reply = b"UP\n"  # tcp-flip recovers: its incident resolves
            run_agent(agent, env, pipeline,
                      "tcp_check + dns_check + alert → postgres_sink (run %d)" % (run + 1))
    finally:
        dns.stop()
        for s in (up.sock, flip.sock, tls.sock, closed, silent):
            s.close()


# --- the test ------------------------------------------------------------------------------

def static_checks(src):
    with open(os.path.join(src, "conf/grafana/dashboards/webmon.json")) as f:
        dash = json.load(f)
    ds_file = open(os.path.join(src, "conf/grafana/provisioning/datasources/webmon.yaml")).read()
    uid = re.search(r"^\s*uid:\s*(\S+)", ds_file, re.M).group(1)
    for needle in ("sslmode: verify-full", "${DATABASE_HOST}:${DATABASE_PORT}", "${DATABASE_USER}",
                   "${DATABASE_DB}", "password: ${DATABASE_PASSWD}", "${DATABASE_SSLROOTCERT}",
                   "timeInterval: 1m"):
        if needle not in ds_file:
            fail("datasources/webmon.yaml lacks %r" % needle)
    provider = open(os.path.join(src, "conf/grafana/provisioning/dashboards/webmon.yaml")).read()
    if "path: ${WEBMON_GRAFANA_DASHBOARDS}" not in provider:
        fail("dashboards/webmon.yaml does not point at WEBMON_GRAFANA_DASHBOARDS")
    # Rows hold no query; a collapsed row keeps its panels inside it.
    panels, grid = [], []
    for p in dash["panels"]:
        grid.append(p)
        if p.get("type") == "row":
            panels.extend(p.get("panels") or [])
        else:
            panels.append(p)
    titles, ids = [], set()
    for p in panels:
        targets = p.get("targets") or []
        if not targets or not all(t.get("rawSql", "").strip() for t in targets):
            fail("panel %r has no query" % p.get("title"))
        for ref in [p.get("datasource")] + [t.get("datasource") for t in targets]:
            if not ref or ref.get("uid") != uid:
                fail("panel %r does not use the data source uid %s" % (p["title"], uid))
        titles.append(p["title"])
    for p in grid:
        if p["id"] in ids:
            fail("panel id %d used twice" % p["id"])
        ids.add(p["id"])
    # Panels of the top level must not overlap on Grafana's 24-column grid.
    cells = {}
    for p in grid:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            fail("panel %r is wider than the grid" % p["title"])
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    fail("panels %r and %r overlap" % (cells[(x, y)], p["title"]))
                cells[(x, y)] = p["title"]
    if sorted(titles) != sorted(PANELS):
        fail("panels %s, the test expects %s" % (sorted(titles), sorted(PANELS)))
    var = [v for v in dash["templating"]["list"] if v["name"] == "target"]
    if len(var) != 1 or not var[0].get("multi") or not var[0].get("includeAll"):
        fail("no multi-select 'target' variable with All")
    return panels, var[0]


def column(pg, sql):
    return {r[0] for r in pg.query(sql)[1]}


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    agent, src = sys.argv[1], sys.argv[2]
    self_test()
    panels, var = static_checks(src)
    env = stack_env(src)
    db = subprocess.run([os.path.join(src, "scripts", "stack"), "db", "grafana"],
                        capture_output=True, text=True, check=True).stdout.strip()
    pg = Db(env, db)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as work:
        load_data(agent, env, db, work)
        # Before any tcp_check/dns_check/alert table exists, the variable lists http_check's.
        cols, rows = pg.query(expand(var["query"], now - timedelta(hours=1), now, {}))
        if [r[1] for r in rows] != ["target-%05d" % i for i in range(6)]:
            fail("with http_check only, the target variable lists %s" % rows)
        load_checks(agent, env, db, work)

    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    # The variable's own query (Grafana runs it with the dashboard's range): every check kind.
    cols, rows = pg.query(expand(var["query"], now - timedelta(hours=1), now, {}))
    if cols != ["__text", "__value"]:
        fail("variable query columns %s" % cols)
    targets = [r[1] for r in rows]
    expected_targets = sorted(["target-%05d" % i for i in range(6)] +
                              ["tcp-up", "tcp-flip", "tcp-closed", "tcp-tls",
                               "dns-a", "dns-nx", "dns-timeout"])
    if targets != expected_targets:
        fail("the target variable lists %s, expected every kind's targets %s"
             % (targets, expected_targets))

    # The data the panels must show, from the tables directly.
    present = {title: column(pg, spec["present"]) for title, spec in PANELS.items()
               if "present" in spec}
    if present["Alert incidents"] != {"tcp-flip", "tcp-closed", "dns-nx", "dns-timeout"}:
        fail("alert incidents stored for %s" % present["Alert incidents"])

    # A selection of one and of two targets of each kind.
    selections = {"All": targets,
                  "one of each kind": ["target-00000", "tcp-flip", "dns-nx"],
                  "two of each kind": ["target-00001", "target-00002", "tcp-tls", "tcp-closed",
                                       "dns-a", "dns-timeout"]}
    ranges = {"1h (raw table)": timedelta(hours=1), "7d (hourly view)": timedelta(days=7),
              "90d (daily view)": timedelta(days=90)}
    results = {}  # (title, range, selection) -> (cols, rows)
    runs = 0
    for range_name, span in ranges.items():
        t_from, t_to = now - span, now
        for sel_name, sel in selections.items():
            variables = {"target": (sel, var)}
            batch = []  # (panel, target, expanded SQL)
            for p in panels:
                for t in p["targets"]:
                    sql = expand(t["rawSql"], t_from, t_to, variables)
                    if "$" in re.sub(r"\$fn\$", "", sql):
                        fail("%r, range %s, targets %s: unexpanded macro or variable left:\n%s"
                             % (p["title"], range_name, sel_name, sql))
                    batch.append((p, t, sql))
            try:
                answers = pg.queries([sql for _, _, sql in batch])
            except RuntimeError as e:
                p, _, sql = batch[e.args[0]]
                fail("%r, range %s, targets %s: PostgreSQL refused the query: %s\n%s"
                     % (p["title"], range_name, sel_name, e.args[1], sql))
            for (p, t, sql), (cols, rows) in zip(batch, answers):
                title, spec = p["title"], PANELS[p["title"]]
                where = "%r, range %s, targets %s" % (title, range_name, sel_name)
                runs += 1
                results[(title, range_name, sel_name)] = (cols, rows)
                if cols != spec["cols"]:
                    fail("%s: columns %s, expected %s" % (where, cols, spec["cols"]))
                if t.get("format") == "time_series":
                    times = [float(r[0]) for r in rows]
                    if times != sorted(times):
                        fail("%s: time series not sorted by time" % where)
                if spec.get("target"):
                    shown = {r[cols.index(spec["target"])] for r in rows}
                    want = present[title] & set(sel)
                    if not shown <= set(sel):
                        fail("%s: rows for targets not selected: %s" % (where, shown - set(sel)))
                    if not spec.get("subset") and shown != want:
                        fail("%s: targets %s, expected %s" % (where, shown, want))
                    if spec.get("subset") and want and not shown:
                        fail("%s: no rows\n%s" % (where, sql))
                elif not rows and not spec.get("empty"):
                    fail("%s: no rows\n%s" % (where, sql))

    # Uptime: the raw table, the hourly and the daily view agree, and with a direct count.
    for title, table in UPTIME.items():
        direct = {r[0]: float(r[1]) for r in pg.query(
            "SELECT target, round(100.0 * count(*) FILTER (WHERE success) / count(*), 3) "
            "FROM webmon.%s GROUP BY target" % table)[1]}
        for range_name in ranges:
            _, rows = results[(title, range_name, "All")]
            got = {r[0]: float(r[1]) for r in rows}
            if got != direct:
                fail("%r, range %s: uptime %s, direct count %s" % (title, range_name, got, direct))
    if not (direct["dns-a"] == 100 and direct["dns-nx"] == 0 and direct["dns-timeout"] == 0):
        fail("dns_check uptime %s: dns-a always answered, dns-nx and dns-timeout never" % direct)

    # What the new panels show, as the checks happened (1 hour, All).
    def table(title, sel="All", range_name="1h (raw table)"):
        cols, rows = results[(title, range_name, sel)]
        return [dict(zip(cols, r)) for r in rows]

    classes = {r["metric"] for r in table("TCP failures by error class")}
    if classes != {"connect", "reply_mismatch"}:
        fail("TCP failures by error class: %s, expected connect (tcp-closed) and reply_mismatch "
             "(tcp-flip)" % classes)
    classes = {r["metric"] for r in table("DNS failures by rcode / error class")}
    if classes != {"rcode NXDOMAIN", "timeout"}:
        fail("DNS failures: %s, expected rcode NXDOMAIN (dns-nx) and timeout" % classes)
    failures = sum(int(r["failures"]) for r in table("DNS failures by rcode / error class"))
    if failures != 6:
        fail("DNS failures: %d, expected 6 (two targets failing in three runs)" % failures)
    certs = table("TCP certificate expiry (days left)")
    if [(c["target"], c["days_left"]) for c in certs] != [("tcp-tls", "29")] or \
            "webmon grafana test" not in certs[0]["issuer"]:
        fail("TCP certificate expiry: %s, expected tcp-tls with the test's 30-day certificate "
             "(29 whole days left)" % certs)

    incidents = {r["target"]: r for r in table("Alert incidents")}
    want = {"tcp-flip": ("resolved", "reply_mismatch"), "tcp-closed": ("firing", "connect"),
            "dns-nx": ("firing", "rcode"), "dns-timeout": ("firing", "timeout")}
    got = {t: (r["state"], r["last_error"]) for t, r in incidents.items()}
    if got != want:
        fail("Alert incidents: %s, expected %s" % (got, want))
    # The resolved incident: from its first failed check (run 1) to its first success (run 3),
    # as the alert transform's resolved record says.
    _, rec = pg.query("SELECT since, \"time\", duration_ms FROM webmon.alert "
                      "WHERE target = 'tcp-flip' AND state = 'resolved'")
    _, first = pg.query("SELECT min(\"time\") FROM webmon.tcp_check WHERE target = 'tcp-flip'")
    flip = incidents["tcp-flip"]
    if (flip["since"], flip["resolved"], flip["duration_ms"]) != tuple(rec[0]) or \
            rec[0][0] != first[0][0]:
        fail("Alert incidents: tcp-flip %s, its resolved record %s, its first check %s"
             % (flip, rec, first))
    for t in ("tcp-closed", "dns-nx", "dns-timeout"):
        if incidents[t]["resolved"] != "" or int(incidents[t]["duration_ms"]) <= 0:
            fail("Alert incidents: %s is still firing, shown %s" % (t, incidents[t]))
    # Firing incidents: none in the buckets before the checks ran (a fresh database); the last
    # bucket counts the three still firing, and the one resolved if it overlaps that bucket.
    for range_name in ranges:
        for sel_name, sel in selections.items():
            rows = table("Firing incidents", sel_name, range_name)
            firing_now = len({"tcp-closed", "dns-nx", "dns-timeout"} & set(sel))
            incidents_sel = len(set(want) & set(sel))
            last = int(rows[-1]["firing"])
            if int(rows[0]["firing"]) != 0 or not firing_now <= last <= incidents_sel:
                fail("Firing incidents, range %s, targets %s: first bucket %s, last %s; expected "
                     "0 and %d to %d" % (range_name, sel_name, rows[0]["firing"], last, firing_now,
                                         incidents_sel))

    print("ok: %d panels, %d expanded queries (3 ranges × All/one/two targets of each kind) "
          "returned the expected columns and rows; uptime agrees across the raw table and the "
          "hourly and daily views for http_check, tcp_check and dns_check; tcp_check, dns_check "
          "and alert panels show what the real plugins stored" % (len(panels), runs))


if __name__ == "__main__":
    main()
