#!/usr/bin/env python3
"""cgdiff.py A B PERREQ_PATTERN [N]: per-request inclusive and self cost and calls of every function
in profiles A and B (normalised by the call count of the function matching PERREQ_PATTERN), sorted
by the largest absolute change of inclusive cost."""
import re, sys
from collections import defaultdict
def load(path):
    names = {}
    def name(s):
        m = re.match(r'\((\d+)\)(?: (.*))?', s)
        if not m: return s
        if m.group(2) is not None: names[m.group(1)] = m.group(2)
        return names[m.group(1)]
    selfc = defaultdict(int); callc = defaultdict(int); out = defaultdict(int)
    fn = None; pending = None; expect = False; total = 0
    for line in open(path):
        if line.startswith('fn='): fn = name(line[3:].rstrip('\n'))
        elif line.startswith('cfn='): pending = name(line[4:].rstrip('\n'))
        elif line.startswith('calls='):
            callc[pending] += int(line[6:].split()[0]); expect = True
        elif line.startswith('totals:'): total = int(line.split()[1])
        elif line[:1].isdigit() or line[:1] in '+-*':
            parts = line.split(); cost = int(parts[1]) if len(parts) > 1 else 0
            if expect:
                if pending != fn: out[fn] += cost
                expect = False
            else: selfc[fn] += cost
    return selfc, callc, out, total
a, b, pat = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
n = int(sys.argv[4]) if len(sys.argv) > 4 else 60
filt = re.compile(sys.argv[5]) if len(sys.argv) > 5 else None
A = load(a); B = load(b)
def req(P):
    return max(c for f, c in P[1].items() if f and pat.search(f))
ra, rb = req(A), req(B)
print(f"requests A {ra} B {rb}; total per request A {A[3]/ra:.0f} B {B[3]/rb:.0f} ({(B[3]/rb)/(A[3]/ra)-1:+.2%})")
rows = []
for f in set(A[0]) | set(A[1]) | set(B[0]) | set(B[1]):
    if f is None: continue
    if filt and not filt.search(f): continue
    ia = (A[0][f] + A[2][f]) / ra; ib = (B[0][f] + B[2][f]) / rb
    sa = A[0][f] / ra; sb = B[0][f] / rb
    rows.append((ib - ia, ia, ib, sa, sb, A[1][f] / ra, B[1][f] / rb, f))
rows.sort(key=lambda r: -abs(r[0]))
print(f"{'d incl':>8} {'incl A':>8} {'incl B':>8} {'self A':>7} {'self B':>7} {'callsA':>6} {'callsB':>6}  function")
for r in rows[:n]:
    print(f"{r[0]:8.0f} {r[1]:8.0f} {r[2]:8.0f} {r[3]:7.0f} {r[4]:7.0f} {r[5]:6.2f} {r[6]:6.2f}  {r[7][:170]}")
