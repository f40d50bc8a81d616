#!/usr/bin/env python3
"""Markdown summary of bench/relay/run.sh results (relay-*.jsonl).

One row per load (streams, offered rate): per target the median over
repetitions of forwarded pps, loss, busy fraction of the SUT core and pps
per core, then the ratios ours/plain and ours/rtpengine of pps per core.
Usage: table.py FILE.jsonl [...]
"""
import json
import statistics
import sys


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, spec="{:,.0f}"):
    return "-" if x is None else spec.format(x)


def main(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    runs = [r for r in rows if r.get("label") != "mem"]
    mem = [r for r in rows if r.get("label") == "mem"]
    loads = sorted({(r["streams"], r["rate_req"]) for r in runs if r["target"] != "direct"},
                   key=lambda k: (k[1] != 0, k[0]))
    targets = [t for t in ("ours", "ours-base", "plain", "rtpengine")
               if any(r["target"] == t for r in runs)]

    def cell(t, n, rate, key):
        return med([r.get(key) for r in runs
                    if r["target"] == t and r["streams"] == n and r["rate_req"] == rate])

    print("| streams | offered | target | fwd pps | loss % | SUT core busy | pps per core |")
    print("|---|---|---|---|---|---|---|")
    for n, rate in loads:
        for t in targets:
            fwd = cell(t, n, rate, "fwd_pps")
            if fwd is None:
                continue
            print("| %d | %s | %s | %s | %s | %s | %s |" % (
                n, "max" if rate == 0 else "%d pps/stream" % (rate // n), t, fmt(fwd),
                fmt(cell(t, n, rate, "loss_pct"), "{:.2f}"),
                fmt(cell(t, n, rate, "sut_core_busy"), "{:.2f}"),
                fmt(cell(t, n, rate, "pps_per_core"))))
    d = med([r["fwd_pps"] for r in runs if r["target"] == "direct"])
    if d:
        print("\nLoad side alone (gen -> sink on CPU 0, no relay): %s pps." % fmt(d))

    print("\n| streams | offered | ours / plain forwarder | ours / rtpengine | ours / ours-base |")
    print("|---|---|---|---|---|")
    for n, rate in loads:
        o = cell("ours", n, rate, "pps_per_core")

        def ratio(t):
            x = cell(t, n, rate, "pps_per_core")
            return "%.2f" % (o / x) if o and x else "-"
        print("| %d | %s | %s | %s | %s |" % (n, "max" if rate == 0 else "%d pps/stream" % (rate // n),
                                           ratio("plain"), ratio("rtpengine"), ratio("ours-base")))
    if mem:
        print("\n| memory | sessions | RSS before kB | RSS after kB | kB per 1000 sessions |")
        print("|---|---|---|---|---|")
        for r in mem:
            print("| %s | %d | %d | %d | %d |" % (r["target"], r["sessions"], r["rss_before_kb"],
                                                r["rss_after_kb"], r["rss_per_1000_sessions_kb"]))


if __name__ == "__main__":
    main(sys.argv[1:])
