#!/usr/bin/env python3
"""calls.py PROFILE PATTERN...: the profile's total Ir, then for each function whose name matches a
PATTERN (regex): the calls into it, its inclusive Ir (self plus the inclusive cost of the calls it
makes, recursive self-calls not counted twice) and its self Ir."""
import re
import sys
from collections import defaultdict


def load(path):
    """Self cost, calls received and outgoing inclusive cost per function, and the total."""
    names = {}

    def name(s):
        m = re.match(r'\((\d+)\)(?: (.*))?', s)
        if not m:
            return s
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    selfc, callc, out = defaultdict(int), defaultdict(int), defaultdict(int)
    fn = callee = None
    in_call = False
    total = 0
    with open(path) as f:
        for line in f:
            if line.startswith('fn='):
                fn = name(line[3:].rstrip('\n'))
            elif line.startswith('cfn='):
                callee = name(line[4:].rstrip('\n'))
            elif line.startswith('calls='):
                callc[callee] += int(line[6:].split()[0])
                in_call = True
            elif line.startswith('totals:'):
                total = int(line.split()[1])
            elif line[:1].isdigit() or line[:1] in '+-*':
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    if callee != fn:
                        out[fn] += cost
                    in_call = False
                else:
                    selfc[fn] += cost
    return selfc, callc, out, total


if __name__ == '__main__':
    selfc, callc, out, total = load(sys.argv[1])
    print(f"total Ir {total}")
    for p in map(re.compile, sys.argv[2:]):
        for f in sorted(set(selfc) | set(callc), key=str):
            if f and p.search(f):
                print(f"{callc[f]:>10} calls  {selfc[f] + out[f]:>14,} incl  {selfc[f]:>12,} self  {f[:200]}")
