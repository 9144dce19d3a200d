#!/usr/bin/env python3
"""The status page in a real browser: headless Chromium loads the demo page (targets up, down,
flapping, with an expiring certificate, and one named <script>), the DOM must show each
target's state, uptime figures, last error and certificate as computed here from the demo's
rules (tests/demo.cpp), the page must log nothing to the console and make no request other
than to itself, and a screenshot is taken.

Usage: browser_test.py STATUS_PAGE_DEMO OUT_DIR [--update-screenshot DOCS_PNG]
"""
import html.parser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HOUR = 3600
STEP = 600
CHECKS = 1008  # k = 0 .. 1007


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def expected_targets(now):
    """Replays tests/demo.cpp's rules: name -> dict of expected figures."""
    rules = {
        "www": dict(group="web", failed=lambda k: False, error=None, cert=80,
                    url="https://www.example.com/"),
        "api": dict(group="web", failed=lambda k: k < 6, error=("http_status", "HTTP 503 Service Unavailable"),
                    cert=200, url="https://api.example.com/health"),
        "search": dict(group="web", failed=lambda k: k < 12 and k % 2 == 0,
                       error=("timeout", "Operation timed out after 5000 milliseconds"), cert=60,
                       url="https://search.example.com/"),
        "shop": dict(group="web", failed=lambda k: False, error=None, cert=5,
                     url="https://shop.example.com/"),
        "<script>alert(1)</script>": dict(
            group="internal", failed=lambda k: k == 30,
            error=("other", "bad <b>tag</b> from https://internal.example/"), cert=30,
            url="https://internal.example/"),
        "db": dict(group="internal", failed=lambda k: 200 <= k < 206,
                   error=("connect", "Failed to connect to db.internal port 5432: Connection refused"),
                   cert=None, url="http://db.internal:8080/health"),
    }
    now_hour = now // HOUR
    out = {}
    for name, r in rules.items():
        def uptime(hours):
            checks = fails = 0
            for k in range(CHECKS):
                h = (now - k * STEP) // HOUR
                if now_hour - hours < h <= now_hour:
                    checks += 1
                    fails += 1 if r["failed"](k) else 0
            return 100.0 * (checks - fails) / checks

        failed_ks = [k for k in range(CHECKS) if r["failed"](k)]
        changes = sum(1 for k in range(59) if r["failed"](k) != r["failed"](k + 1))  # last 60
        state = "flapping" if changes >= 4 else ("down" if r["failed"](0) else "up")
        last_error_time = now - min(failed_ks) * STEP if failed_ks else None
        out[name] = dict(group=r["group"], state=state, uptime_24h=uptime(24),
                         uptime_7d=uptime(168), error=r["error"] if failed_ks else None,
                         last_error_time=last_error_time, cert=r["cert"], url=r["url"])
    return out


def percent(p):
    """The page's format: floored to 2 decimals, "100%" only when it is 100."""
    if p >= 100.0:
        return "100%"
    return "%.2f%%" % (int(p * 100) / 100.0)


class Dom(html.parser.HTMLParser):
    """Collects each target row's cells (text per class) and every element seen."""

    def __init__(self):
        super().__init__()
        self.rows = {}
        self.row = None
        self.cell = None
        self.tags = []
        self.attrs_seen = []
        self.h2 = []
        self.in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs_seen.append((tag, a))
        if tag == "tr" and a.get("class") == "target":
            self.row = {"_state": a.get("data-state"), "_name": a.get("data-target"),
                        "_classes": {}}
            self.rows[a.get("data-target")] = self.row
            self.row["_order"] = len(self.rows)
        elif tag == "td" and self.row is not None:
            self.cell = a.get("class", "")
            self.row[self.cell] = ""
            self.row["_classes"][self.cell] = a.get("class")
        elif tag == "h2":
            self.in_h2 = True
            self.h2.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "tr":
            self.row = None
        elif tag == "h2":
            self.in_h2 = False

    def handle_data(self, data):
        if self.row is not None and self.cell is not None:
            self.row[self.cell] += data
        if self.in_h2:
            self.h2[-1] += data


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    fail("chromium is not installed (scripts/bootstrap installs Debian's chromium)")


def run_chromium(args, work, url, name):
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    cmd = [chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
           "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
           "--log-net-log=" + os.path.join(work, name + "-netlog.json"),
           "--net-log-capture-mode=Default"] + args + [url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    with open(os.path.join(work, name + "-stderr.log"), "w") as f:
        f.write(p.stderr)
    if p.returncode != 0:
        fail("chromium %s exited %d:\n%s" % (name, p.returncode, p.stderr[-3000:]))
    return p


def check_console(stderr, name):
    console = [line for line in stderr.splitlines() if ":CONSOLE(" in line or "Refused to" in line]
    if console:
        fail("%s: the page logged to the console:\n%s" % (name, "\n".join(console)))


def check_requests(work, name, origin):
    path = os.path.join(work, name + "-netlog.json")
    with open(path) as f:
        text = f.read()
    # A net log cut short by the browser's exit lacks its closing brackets.
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    # Requests made for the page carry its site in their network isolation key; the
    # browser's own background requests (component updates, time sync) carry another one.
    page_urls = set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        url = params.get("url")
        nik = params.get("network_isolation_key", "")
        if isinstance(url, str) and nik.startswith("http://127.0.0.1 "):
            page_urls.add(url)
    if not any(u.startswith(origin) for u in page_urls):
        fail("%s: the net log shows no request to the page (%s) at all" % (name, origin))
    external = [u for u in page_urls if not u.startswith(origin)]
    if external:
        fail("%s: the page made requests other than to itself: %s" % (name, external))
    return page_urls


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    demo, out_dir = sys.argv[1], sys.argv[2]
    update = sys.argv[4] if len(sys.argv) >= 5 and sys.argv[3] == "--update-screenshot" else None
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="status_page_browser.")
    now = int(time.time())
    port_file = os.path.join(work, "port")
    server = subprocess.Popen([demo, port_file, str(now)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60  # bounds a hang only
        while not os.path.exists(port_file):
            if server.poll() is not None:
                fail("the demo page exited: " + server.stderr.read())
            if time.time() > deadline:
                fail("the demo page did not start within 60 s")
            time.sleep(0.05)
        port = int(open(port_file).read())
        origin = "http://127.0.0.1:%d/" % port
        # Anything not on loopback would fail to resolve rather than leave the machine.
        rules = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]

        dom_run = run_chromium(rules + ["--dump-dom"], work, origin, "dom")
        check_console(dom_run.stderr, "dump-dom")
        check_requests(work, "dom", origin)
        shot = os.path.join(out_dir, "status_page.png")
        shot_run = run_chromium(rules + ["--hide-scrollbars", "--window-size=1280,720",
                                         "--screenshot=" + shot], work, origin, "screenshot")
        check_console(shot_run.stderr, "screenshot")
        check_requests(work, "screenshot", origin)
        with open(shot, "rb") as f:
            png = f.read()
        if not png.startswith(b"\x89PNG") or len(png) < 10_000:
            fail("the screenshot %s is not a plausible PNG (%d bytes)" % (shot, len(png)))
        if update:
            shutil.copyfile(shot, update)
            print("screenshot copied to " + update)

        dom = Dom()
        dom.feed(dom_run.stdout)
        expected = expected_targets(now)
        if "script" in dom.tags:
            fail("the DOM has a <script> element (an unescaped target name?)")
        if "b" in dom.tags or "img" in dom.tags:
            fail("the DOM has markup from an error message")
        for tag, attrs in dom.attrs_seen:
            for key in ("src", "href"):
                v = attrs.get(key)
                if v and (v.startswith("http:") or v.startswith("https:") or v.startswith("//")):
                    fail("<%s %s=%r>: an external reference" % (tag, key, v))
        if dom.h2 != ["web", "internal"]:
            fail("groups shown: %s, expected ['web', 'internal']" % dom.h2)
        if set(dom.rows) != set(expected):
            fail("targets shown: %s, expected %s" % (sorted(dom.rows), sorted(expected)))
        for name, e in expected.items():
            row = dom.rows[name]
            where = "target %r" % name
            shown = re.match(r"(up|down|flapping|stale)", row["state"])
            if row["_state"] != e["state"] or not shown or shown.group(1) != e["state"]:
                fail("%s: state %r / %r, expected %s" % (where, row["_state"], row["state"], e["state"]))
            if row["uptime-24h"] != percent(e["uptime_24h"]):
                fail("%s: uptime 24 h %r, expected %r" % (where, row["uptime-24h"], percent(e["uptime_24h"])))
            if row["uptime-7d"] != percent(e["uptime_7d"]):
                fail("%s: uptime 7 d %r, expected %r" % (where, row["uptime-7d"], percent(e["uptime_7d"])))
            if name not in row["name"] or e["url"] not in row["name"]:
                fail("%s: name cell %r, expected the name and %s" % (where, row["name"], e["url"]))
            if "s3cret" in row["name"] or "admin" in row["name"]:
                fail("%s: credentials shown: %r" % (where, row["name"]))
            if e["error"] is None:
                if row["last-error"] != "none":
                    fail("%s: last error %r, expected none" % (where, row["last-error"]))
            else:
                want = "%s: %s" % e["error"]
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(e["last_error_time"]))
                if not row["last-error"].startswith(want) or not row["last-error"].endswith(when):
                    fail("%s: last error %r, expected %r at %s" % (where, row["last-error"], want, when))
            cert_class = next(k for k in row["_classes"] if k.startswith("cert"))
            cert_text = row[cert_class]
            if e["cert"] is None:
                if cert_text != "–":
                    fail("%s: certificate %r, expected none" % (where, cert_text))
            else:
                if cert_text != "%d days" % e["cert"]:
                    fail("%s: certificate %r, expected %d days" % (where, cert_text, e["cert"]))
                if ("warn" in cert_class.split()) != (e["cert"] < 14):
                    fail("%s: certificate cell class %r (expiring: %s)" % (where, cert_class, e["cert"] < 14))
        order = sorted(dom.rows.values(), key=lambda r: r["_order"])
        names = [r["_name"] for r in order]
        if names != ["api", "search", "shop", "www", "<script>alert(1)</script>", "db"]:
            fail("row order %s" % names)
        print("ok: %d targets shown as expected (states, uptime 24 h and 7 d, last errors, "
              "certificates); no console output, no request other than %s; screenshot %s"
              % (len(expected), origin, shot))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if os.environ.get("KEEP_WORK") is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("work dir kept: " + work)


if __name__ == "__main__":
    main()
