#!/usr/bin/env python3
"""Turns ApacheBench (ab) output into the JSON line wrk_report.lua prints.

usage: ab_report.py [--doc-len N] < ab-output   ->   WRKJSON {...}

Run ab with -l: ab takes the body length of the first response it completes
as the length of every other and counts any difference as a failure, and
through tollgate's MITM it reads that first length as 0 (while every body
arrives whole: ab's "HTML transferred" is 1024 bytes per request). With
--doc-len N the body bytes ab counted must add up to N per successful
request instead (a short body is an error).

ab opens a new connection, with a new TLS session (no resumption), for every
request: the bench uses it where every flow must pay a full handshake. Its
latency percentiles are whole milliseconds.
"""
import argparse
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc-len", type=int)
    args = ap.parse_args()
    text = sys.stdin.read()

    def num(pattern, default=None, cast=float):
        m = re.search(pattern, text, re.M)
        return cast(m.group(1)) if m else default

    complete = num(r"^Complete requests:\s+(\d+)", 0, int)
    failed = num(r"^Failed requests:\s+(\d+)", 0, int)
    non2xx = num(r"^Non-2xx responses:\s+(\d+)", 0, int)
    taken = num(r"^Time taken for tests:\s+([\d.]+) seconds", 0.0)
    # "(Connect: 0, Receive: 0, Length: 0, Exceptions: 0)" follows Failed requests.
    kinds = {k.lower(): int(v) for k, v in
             re.findall(r"(Connect|Receive|Length|Exceptions): (\d+)", text)}
    pct = {int(p): int(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\d+)", text, re.M)}
    mean = num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)", 0.0)
    html = num(r"^HTML transferred:\s+(\d+) bytes", 0, int)
    if not complete or not taken:
        print("ab_report: no result in ab's output:\n" + text[-2000:], file=sys.stderr)
        return 1
    # Requests that ended in a failure are not counted as served.
    ok = complete - failed - non2xx
    short = 0
    if args.doc_len and ok > 0 and html < args.doc_len * ok:
        short = ok - html // args.doc_len   # at least this many bodies were cut
    out = {
        "requests": ok,
        "duration_us": int(taken * 1e6),
        "bytes": html,
        "errors": {"connect": kinds.get("connect", 0), "read": kinds.get("receive", 0),
                   "write": kinds.get("exceptions", 0),
                   "status": non2xx + kinds.get("length", 0) + short,
                   "timeout": 0},
        "latency_us": {"mean": mean * 1000, "stdev": 0, "min": 0,
                       "max": pct.get(100, 0) * 1000,
                       "p50": pct.get(50, 0) * 1000, "p75": pct.get(75, 0) * 1000,
                       "p90": pct.get(90, 0) * 1000, "p99": pct.get(99, 0) * 1000,
                       "p999": pct.get(100, 0) * 1000},
        "client": "ab",
    }
    print("WRKJSON " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
