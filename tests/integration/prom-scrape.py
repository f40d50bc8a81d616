#!/usr/bin/env python3
"""prom-scrape URL OUT: GET a Prometheus /metrics endpoint, check the
Content-Type and the text exposition format (names, labels, HELP/TYPE
before the samples of a family, a family's samples together, counters
ending in _total, a final newline), write the body to OUT and one
"series value" line per sample to OUT.values.  Exit status 0 or a message.
Used by the integration tests, where promtool may not be installed."""
import re, sys, urllib.request
url, out = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(url, timeout=5) as r:
    ctype = r.headers.get("Content-Type")
    body = r.read().decode("utf-8")
if ctype != "text/plain; version=0.0.4":
    sys.exit("bad Content-Type %r" % ctype)
open(out, "w").write(body)
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (\S+)$" % (name_re, label_re, label_re))
types, seen, current, values = {}, set(), None, []
for n, line in enumerate(body.split("\n")[:-1], 1):
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        parts = line.split(" ", 3)
        if not re.fullmatch(name_re, parts[2]):
            sys.exit("line %d: bad metric name" % n)
        if line.startswith("# TYPE "):
            if parts[2] in types:
                sys.exit("line %d: TYPE twice for %s" % (n, parts[2]))
            if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                sys.exit("line %d: bad type" % n)
            types[parts[2]] = parts[3]
            if parts[2] in seen:
                sys.exit("line %d: TYPE after samples" % n)
        current = parts[2]
        continue
    m = sample.match(line)
    if not m:
        sys.exit("line %d: not a sample: %r" % (n, line))
    float(m.group(3).replace("Inf", "inf"))
    fam = m.group(1)
    for suffix in ("_bucket", "_sum", "_count"):
        if fam.endswith(suffix) and types.get(fam[: -len(suffix)]) == "histogram":
            fam = fam[: -len(suffix)]
    if fam != current:
        sys.exit("line %d: %s outside its family's group" % (n, fam))
    if fam in seen and fam != current:
        sys.exit("line %d: %s split" % (n, fam))
    seen.add(fam)
    if types.get(fam) == "counter" and not m.group(1).endswith("_total"):
        sys.exit("line %d: counter without _total" % n)
    values.append("%s%s %s" % (m.group(1), m.group(2) or "", m.group(3)))
if not body.endswith("\n"):
    sys.exit("no final newline")
open(out + ".values", "w").write("\n".join(values) + "\n")
