#!/usr/bin/env python3
"""conf/grafana against the real schema: every panel's SQL, expanded the way Grafana expands
it, runs on the local stack's PostgreSQL after a generator → postgres_sink run and returns rows
with the columns the panel expects.

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
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

MAX_DATA_POINTS = 1000  # a panel about 1000 px wide
MIN_INTERVAL_MS = 60_000  # jsonData.timeInterval: 1m

# The columns each panel must return (title -> columns, in order).
EXPECTED = {
    "Uptime per target": ["target", "uptime_pct"],
    "Uptime and response time per target": ["target", "checks", "failures", "uptime_pct", "avg_ms", "max_ms"],
    "Response time p50 / p95 / p99 per target": ["time", "metric", "p50_ms", "p95_ms", "p99_ms"],
    "Phase timings (stacked)": ["time", "dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"],
    "Failures by error class": ["time", "metric", "failures"],
    "Certificate expiry (days left)": ["target", "days_left", "not_after", "issuer", "url"],
    "Lateness (check start vs schedule)": ["time", "p99_lateness_ms", "max_lateness_ms"],
    "Latest failures": ["time", "target", "error", "status_code", "error_message"],
    "Rejected records": ["reason", "records", "last_rejected"],
}
# Panels whose rows may legitimately be empty after a healthy run (nothing rejected).
MAY_BE_EMPTY = {"Rejected records"}


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


def load_data(agent, src, env, db, work):
    pipeline = os.path.join(work, "load.yaml")
    with open(pipeline, "w") as f:
        f.write("""sources:
  gen: { plugin: generator, count: 3000, targets: 6, failure_every: 7 }
sinks:
  pg:
    plugin: postgres_sink
    inputs: [gen]
    host: %(DATABASE_HOST)s
    port: %(DATABASE_PORT)s
    database: %(db)s
    user: %(DATABASE_USER)s
    password: ${DATABASE_PASSWD}
    sslmode: verify-full
    sslrootcert: %(DATABASE_SSLROOTCERT)s
""" % dict(env, db=db))
    p = subprocess.run([agent, "--pipeline", pipeline], capture_output=True, text=True,
                       env=dict(os.environ, DATABASE_PASSWD=env["DATABASE_PASSWD"]), timeout=300)
    if p.returncode != 0:
        fail("generator → postgres_sink exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))


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
    titles = []
    for p in dash["panels"]:
        targets = p.get("targets") or []
        if not targets or not all(t.get("rawSql", "").strip() for t in targets):
            fail("panel %r has no query" % p.get("title"))
        for ref in [p.get("datasource")] + [t.get("datasource") for t in targets]:
            if not ref or ref.get("uid") != uid:
                fail("panel %r does not use the data source uid %s" % (p["title"], uid))
        titles.append(p["title"])
    if sorted(titles) != sorted(EXPECTED):
        fail("panels %s, the test expects %s" % (sorted(titles), sorted(EXPECTED)))
    var = [v for v in dash["templating"]["list"] if v["name"] == "target"]
    if len(var) != 1 or not var[0].get("multi") or not var[0].get("includeAll"):
        fail("no multi-select 'target' variable with All")
    return dash, var[0]


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    agent, src = sys.argv[1], sys.argv[2]
    self_test()
    dash, var = static_checks(src)
    env = stack_env(src)
    db = subprocess.run([os.path.join(src, "scripts", "stack"), "db", "grafana"],
                        capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as work:
        load_data(agent, src, env, db, work)
    pg = Db(env, db)

    now = datetime.now(timezone.utc) + timedelta(seconds=5)
    # The variable's own query (Grafana runs it with the dashboard's range).
    cols, rows = pg.query(expand(var["query"], now - timedelta(hours=1), now, {}))
    if cols != ["__text", "__value"]:
        fail("variable query columns %s" % cols)
    targets = [r[1] for r in rows]
    if len(targets) != 6:
        fail("the target variable lists %d targets, expected the 6 generated" % len(targets))

    selections = {"All": targets, "one": [targets[0]], "two": targets[1:3]}
    ranges = {"1h (raw table)": timedelta(hours=1), "7d (hourly view)": timedelta(days=7),
              "90d (daily view)": timedelta(days=90)}
    uptime_by_range = {}
    runs = 0
    for range_name, span in ranges.items():
        t_from, t_to = now - span, now
        for sel_name, sel in selections.items():
            variables = {"target": (sel, var)}
            for p in dash["panels"]:
                title = p["title"]
                for t in p["targets"]:
                    sql = expand(t["rawSql"], t_from, t_to, variables)
                    where = "%r, range %s, targets %s" % (title, range_name, sel_name)
                    if "$" in re.sub(r"\$fn\$", "", sql):
                        fail("%s: unexpanded macro or variable left:\n%s" % (where, sql))
                    try:
                        cols, rows = pg.query(sql)
                    except RuntimeError as e:
                        fail("%s: PostgreSQL refused the query: %s\n%s" % (where, e, sql))
                    runs += 1
                    if cols != EXPECTED[title]:
                        fail("%s: columns %s, expected %s" % (where, cols, EXPECTED[title]))
                    if not rows and title not in MAY_BE_EMPTY:
                        fail("%s: no rows\n%s" % (where, sql))
                    if t.get("format") == "time_series":
                        times = [float(r[0]) for r in rows]
                        if times != sorted(times):
                            fail("%s: time series not sorted by time" % where)
                    if "target" in cols or "metric" in cols and title != "Failures by error class":
                        idx = cols.index("target") if "target" in cols else cols.index("metric")
                        shown = {r[idx] for r in rows}
                        if not shown <= set(sel):
                            fail("%s: rows for targets not selected: %s" % (where, shown - set(sel)))
                        if sel_name != "All" and title not in ("Latest failures",) and shown != set(sel):
                            fail("%s: targets %s, expected %s" % (where, shown, set(sel)))
                    if title == "Uptime per target" and sel_name == "All":
                        uptime_by_range[range_name] = {r[0]: float(r[1]) for r in rows}
    # The raw table, the hourly and the daily view must agree on the same data.
    first = next(iter(uptime_by_range.values()))
    for name, values in uptime_by_range.items():
        if values != first:
            fail("uptime differs between ranges: %s %s vs %s" % (name, values, first))
    # And with a direct count.
    _, direct = pg.query("SELECT target, round(100.0 * count(*) FILTER (WHERE success) / count(*), 3) "
                         "FROM webmon.http_check GROUP BY target")
    if {r[0]: float(r[1]) for r in direct} != first:
        fail("uptime per target %s, direct count %s" % (first, direct))
    print("ok: %d panels, %d expanded queries (3 ranges × All/one/two targets) returned the expected "
          "columns and rows; uptime agrees across the raw table and the hourly and daily views"
          % (len(dash["panels"]), runs))


if __name__ == "__main__":
    main()
