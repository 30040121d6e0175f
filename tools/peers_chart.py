#!/usr/bin/env python3
"""Draw the peers' results as an SVG chart: every peer's time relative to Go's, per workload.

Usage: tools/peers_chart.py OUT.svg RUN.tsv [RUN.tsv ...]

Each RUN.tsv is one `../shared/peers/run.sh` run's `results/latest.tsv` (workload, peer,
workers, median, unit). Ratios are taken within a run (peer / Go, measured side by side), so
runs on a machine whose speed drifts stay comparable. With several runs a bar is the median of
the runs' ratios and its whisker spans their range. Throughput units (`roundtrips/s`) are
inverted so that lower is better everywhere. Failed or skipped cells are marked, not drawn.
Standard library only; the numbers come from the files, none are typed in here.
"""

import math
import statistics
import sys

ORDER = ["spawn", "yield", "pingpong", "skynet", "parked_mem", "mpmc", "mutex", "primes",
         "select", "sleep", "echo", "conns", "conns_mem"]
PEERS = [("goro", "#2b7bba"), ("may", "#e69f00"), ("tokio", "#7a5195"), ("threads", "#999999")]
THROUGHPUT = {"roundtrips/s"}
LO, HI = 1 / 8, 8.0  # the ratio axis (log scale), clipped at both ends


def read_run(path):
    cells = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        col = {name: i for i, name in enumerate(header)}
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < len(header):
                continue
            key = (parts[col["workload"]], int(parts[col["workers"]]))
            cells.setdefault(key, {})[parts[col["peer"]]] = (parts[col["median"]], parts[col["unit"]])
    return cells


def ratio(cell, go):
    """peer relative to Go (lower is better), or None when either did not produce a number."""
    try:
        v, g = float(cell[0]), float(go[0])
    except (TypeError, ValueError):
        return None
    if v <= 0 or g <= 0:
        return None
    return g / v if cell[1] in THROUGHPUT else v / g


def collect(runs):
    groups = {}
    for cells in runs:
        for key, peers in cells.items():
            go = peers.get("go")
            if go is None:
                continue
            g = groups.setdefault(key, {})
            for peer, _ in PEERS:
                if peer in peers:
                    g.setdefault(peer, []).append(ratio(peers[peer], go))
    rank = {w: i for i, w in enumerate(ORDER)}
    keys = sorted(groups, key=lambda k: (rank.get(k[0], len(ORDER)), k[1]))
    return [(k, groups[k]) for k in keys]


def y_of(r, top, height):
    r = min(max(r, LO), HI)
    frac = (math.log2(HI) - math.log2(r)) / (math.log2(HI) - math.log2(LO))
    return top + frac * height


def draw(groups, nruns):
    bar, gap, pad_l, pad_t, height = 11, 18, 56, 48, 300
    shown = [p for p, _ in PEERS if any(p in g for _, g in groups)]
    group_w = bar * len(shown) + gap
    width = pad_l + group_w * len(groups) + 20
    total_h = pad_t + height + 110
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{total_h}" fill="white"/>',
           f'<text x="{pad_l}" y="16" font-size="13">Time relative to Go in the same run '
           f'(log scale, lower is better)</text>',
           f'<text x="{pad_l}" y="31">{nruns} run{"s" if nruns != 1 else ""}: bar = median of '
           f'the runs, whisker = their range; ✗ = failed or skipped</text>']
    tick = LO
    while tick <= HI * 1.001:
        y = y_of(tick, pad_t, height)
        label = f"{tick:g}×" if tick >= 1 else f"1/{round(1 / tick)}×"
        stroke = "#333" if tick == 1 else "#ddd"
        out.append(f'<line x1="{pad_l}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{stroke}"/>')
        out.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        tick *= 2
    base = y_of(1.0, pad_t, height)
    for gi, ((workload, workers), g) in enumerate(groups):
        x0 = pad_l + gi * group_w + gap / 2
        for pi, peer in enumerate(shown):
            color = dict(PEERS)[peer]
            x = x0 + pi * bar
            vals = g.get(peer)
            if not vals:
                continue
            good = [v for v in vals if v is not None]
            if len(good) < len(vals) or not good:
                out.append(f'<text x="{x + bar / 2:.1f}" y="{base - 4:.1f}" text-anchor="middle" '
                           f'fill="{color}" font-size="9">✗</text>')
                if not good:
                    continue
            med = statistics.median(good)
            y = y_of(med, pad_t, height)
            top, bot = min(y, base), max(y, base)
            out.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar - 2}" height="{max(bot - top, 1):.1f}" '
                       f'fill="{color}"><title>{peer} {workload} w={workers}: '
                       f'{", ".join(f"{v:.2f}" for v in good)}</title></rect>')
            if len(good) > 1:
                ylo, yhi = y_of(min(good), pad_t, height), y_of(max(good), pad_t, height)
                cx = x + (bar - 2) / 2
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{yhi:.1f}" y2="{ylo:.1f}" stroke="#000"/>')
        lx = x0 + len(shown) * bar / 2
        out.append(f'<text x="{lx:.1f}" y="{pad_t + height + 14}" text-anchor="end" '
                   f'transform="rotate(-40 {lx:.1f} {pad_t + height + 14})">{workload} w={workers}</text>')
    for pi, peer in enumerate(shown):
        x = pad_l + pi * 80
        y = total_h - 12
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{dict(PEERS)[peer]}"/>')
        out.append(f'<text x="{x + 14}" y="{y}">{peer}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    runs = [read_run(p) for p in argv[2:]]
    groups = collect(runs)
    if not groups:
        sys.stderr.write("no workload with a Go result in the given files\n")
        return 1
    with open(argv[1], "w") as f:
        f.write(draw(groups, len(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
