#!/usr/bin/env python3
"""Print the peers' results of several runs as one Markdown table (for the README).

Usage: tools/peers_table.py RUN.tsv [RUN.tsv ...]

Each RUN.tsv is one `../shared/peers/run.sh` run's `results/latest.tsv`. A value cell is the
median over the runs of that run's median; a ratio cell is the median of the runs' ratios to
Go (each taken within its own run, where the peers ran side by side) with their range. For
`roundtrips/s` higher is better; the ratio is still peer / Go of the value, so there > 1 wins.
Reuses the chart script's reader; every number comes from the files.
"""

import statistics
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from peers_chart import ORDER, read_run  # noqa: E402

PEERS = ["goro", "may", "tokio"]


def num(cell):
    try:
        return float(cell[0])
    except (TypeError, ValueError):
        return None


def fmt(v):
    if v is None:
        return "FAIL"
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def main(paths):
    runs = [read_run(p) for p in paths]
    keys = sorted({k for r in runs for k in r},
                  key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
    print("| workload | unit | Go | " + " | ".join(PEERS) + " | "
          + " | ".join(f"{p}/Go (range)" for p in PEERS) + " |")
    print("|---" * (3 + 2 * len(PEERS)) + "|")
    for k in keys:
        unit = next((r[k]["go"][1] for r in runs if k in r and "go" in r[k]), "?")
        vals, ratios = {}, {}
        for peer in ["go"] + PEERS:
            vs, rs = [], []
            for r in runs:
                cells = r.get(k, {})
                v, g = num(cells.get(peer)), num(cells.get("go"))
                vs.append(v)
                rs.append(v / g if v is not None and g else None)
            ok = [v for v in vs if v is not None]
            vals[peer] = statistics.median(ok) if len(ok) == len(vs) else None
            okr = [x for x in rs if x is not None]
            ratios[peer] = (statistics.median(okr), min(okr), max(okr)) if len(okr) == len(rs) else None
        row = [f"{k[0]} (w={k[1]})", unit, fmt(vals["go"])] + [fmt(vals[p]) for p in PEERS]
        for p in PEERS:
            r = ratios[p]
            row.append("FAIL" if r is None else f"{r[0]:.2f} ({r[1]:.2f}–{r[2]:.2f})")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
