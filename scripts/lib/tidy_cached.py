#!/usr/bin/env python3
"""Runs clang-tidy on webmon's sources (not tests or benchmarks) with a result cache.

Called by scripts/lint. A translation unit is checked again only when its preprocessed text,
its compile command, the repository's .clang-tidy or the clang-tidy version changed: the key is
a SHA-256 of all four, and a clean result is remembered under ~/.cache/webmon/tidy (or
$WEBMON_CACHE/tidy). Findings are never cached, so a file with findings is checked every run.

usage: tidy_cached.py BUILD_DIR [FILE...]   (no FILE: every non-test source in the build)
exit 0 when clang-tidy reports nothing, 1 otherwise (the findings are printed).
"""
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys

EXCLUDE = re.compile(r"(_test\.cpp$|/test_[^/]*$|/tests?/|/bench/|/testing/|/build/)")


def compile_entries(build_dir):
    with open(os.path.join(build_dir, "compile_commands.json"), encoding="utf-8") as f:
        return json.load(f)


def preprocess_key(entry, tidy_config, tidy_version):
    args = shlex.split(entry["command"]) if "command" in entry else list(entry["arguments"])
    if args and os.path.basename(args[0]) == "ccache":
        args = args[1:]
    out = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a in ("-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD"):
            continue
        out.append(a)
    pre = subprocess.run(out + ["-E", "-P"], cwd=entry["directory"], capture_output=True,
                         check=False)
    # The checkout's own path is left out of the key, so another clone of the same tree (CI)
    # finds the results.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    command = " ".join(out).replace(root, "<root>").replace(
        os.path.relpath(root, entry["directory"]), "<root>")
    h = hashlib.sha256()
    for part in (pre.stdout.replace(root.encode(), b"<root>"), command.encode(), tidy_config,
                 tidy_version):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest() if pre.returncode == 0 else None


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir = os.path.abspath(sys.argv[1])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wanted = {os.path.abspath(f) for f in sys.argv[2:]}
    def selected(entry):
        path = os.path.abspath(entry["file"])
        if wanted:
            return path in wanted
        return path.startswith(root + "/") and not EXCLUDE.search(path[len(root):])

    entries = [e for e in compile_entries(build_dir) if selected(e)]
    seen = set()
    entries = [e for e in entries if not (e["file"] in seen or seen.add(e["file"]))]
    with open(os.path.join(root, ".clang-tidy"), "rb") as f:
        tidy_config = f.read()
    tidy_version = subprocess.run(["clang-tidy", "--version"], capture_output=True,
                                  check=True).stdout
    cache = os.path.join(os.environ.get("WEBMON_CACHE",
                                        os.path.expanduser("~/.cache/webmon")), "tidy")
    os.makedirs(cache, exist_ok=True)

    def check(entry):
        rel = os.path.relpath(entry["file"], root)
        key = preprocess_key(entry, tidy_config, tidy_version)
        if key and os.path.exists(os.path.join(cache, key)):
            return rel, True, ""
        r = subprocess.run(["clang-tidy", "-p", build_dir, "--quiet", entry["file"]],
                           capture_output=True, text=True, check=False)
        findings = "\n".join(line for line in r.stdout.splitlines()
                             if line.strip()) if ("warning:" in r.stdout or
                                                  "error:" in r.stdout) else ""
        if r.returncode == 0 and not findings and key:
            open(os.path.join(cache, key), "w", encoding="utf-8").close()
        return rel, False, findings if findings or r.returncode == 0 else r.stdout + r.stderr

    jobs = int(os.environ.get("WEBMON_BUILD_JOBS", os.cpu_count() or 1))
    failed = cached = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for rel, hit, findings in pool.map(check, entries):
            cached += hit
            if findings:
                failed += 1
                print(f"clang-tidy: {rel}:\n{findings}\n")
    print(f"clang-tidy: {len(entries)} files, {cached} unchanged since a clean run (cached), "
          f"{failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
