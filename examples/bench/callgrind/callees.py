#!/usr/bin/env python3
"""cgcallees.py FILE PERREQ_PATTERN FUNC_PATTERN: callees of the functions matching FUNC_PATTERN,
per request (calls and inclusive cost of each call edge), plus their self cost."""
import re, sys
from collections import defaultdict
path, pat, fpat = sys.argv[1], re.compile(sys.argv[2]), re.compile(sys.argv[3])
names = {}
def name(s):
    m = re.match(r'\((\d+)\)(?: (.*))?', s)
    if not m: return s
    if m.group(2) is not None: names[m.group(1)] = m.group(2)
    return names[m.group(1)]
edges = defaultdict(lambda: [0, 0]); selfc = defaultdict(int); callc = defaultdict(int)
fn = None; pending = None; expect = 0
for line in open(path):
    if line.startswith('fn='): fn = name(line[3:].rstrip('\n'))
    elif line.startswith('cfn='): pending = name(line[4:].rstrip('\n'))
    elif line.startswith('calls='):
        expect = int(line[6:].split()[0]); callc[pending] += expect
    elif line[:1].isdigit() or line[:1] in '+-*':
        parts = line.split(); cost = int(parts[1]) if len(parts) > 1 else 0
        if expect:
            e = edges[(fn, pending)]; e[0] += expect; e[1] += cost; expect = 0
        else: selfc[fn] += cost
req = max(c for f, c in callc.items() if f and pat.search(f))
for f in sorted({f for (f, _) in edges} | set(selfc)):
    if f and fpat.search(f):
        print(f"== {f[:200]}  self {selfc[f]/req:.0f}")
        for (a, b), (n, c) in sorted(edges.items(), key=lambda kv: -kv[1][1]):
            if a == f and c / req >= 5:
                print(f"   {n/req:6.2f} calls {c/req:8.0f} incl  {b[:170]}")
