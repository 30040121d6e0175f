#!/usr/bin/env bash
# Interleaved before/after comparison of goro builds beside Go, for a change that must not
# slow anything down (the peers runner measures one goro checkout at a time).
#
#   tools/ab.sh [-n RUNS] BIN... [-- WORKLOAD[:WORKERS] ...]
#
# BIN: `peer_bench` binaries (cargo build --release --example peer_bench in each checkout),
# the first is the reference ("before"). Runs go, BIN1, BIN2, ..., go, BIN1, ... RUNS times
# (default 5) per workload and prints each median, its ratio to Go's median of the same run
# and to BIN1's. Default workloads: pingpong:1 pingpong:2 skynet:2 select:2 mutex:2.
set -euo pipefail
runs=5
if [ "${1:-}" = -n ]; then runs=$2; shift 2; fi
bins=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do bins+=("$1"); shift; done
[ "${1:-}" = -- ] && shift
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(pingpong:1 pingpong:2 skynet:2 select:2 mutex:2)
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 [-n RUNS] BIN... [-- WORKLOAD[:WORKERS] ...]" >&2; exit 2; }
go=${GO_BIN:-$(dirname "$0")/../../shared/peers/target/go/peer-go}
[ -x "$go" ] || { echo "no Go peer at $go (build it with ../shared/peers/run.sh once, or set GO_BIN)" >&2; exit 2; }
all=("$go" "${bins[@]}")
median() { sort -g | awk '{v[NR]=$1} END{ if (NR==0) print "nan"; else print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for i in "${!bins[@]}"; do echo "bin$((i+1)): ${bins[$i]}"; done
for wl in "${workloads[@]}"; do
    name=${wl%%:*} workers=${wl#*:}
    [ "$workers" = "$wl" ] && workers=2
    vals=()
    for _ in "${all[@]}"; do vals+=(""); done
    unit=""
    for _ in $(seq "$runs"); do
        for i in "${!all[@]}"; do
            line=$(timeout 120 "${all[$i]}" "$name" "$workers" 2>/dev/null | grep '^RESULT' || true)
            [ -n "$line" ] || { echo "${all[$i]} $name $workers: no RESULT" >&2; continue; }
            vals[$i]+="$(awk '{print $5}' <<<"$line") "
            unit=$(awk '{print $6}' <<<"$line")
        done
    done
    meds=()
    for i in "${!all[@]}"; do meds+=("$(tr ' ' '\n' <<<"${vals[$i]}" | grep . | median)"); done
    printf '%s w=%s (%s): go %s' "$name" "$workers" "$unit" "${meds[0]}"
    for i in "${!bins[@]}"; do
        m=${meds[$((i+1))]}
        printf ' | bin%d %s (%.2fx go, %.2fx bin1)' $((i+1)) "$m" \
            "$(awk -v x="$m" -v y="${meds[0]}" 'BEGIN{print x/y}')" \
            "$(awk -v x="$m" -v y="${meds[1]}" 'BEGIN{print x/y}')"
    done
    echo
    for i in "${!all[@]}"; do echo "    ${all[$i]##*/work/}: ${vals[$i]}"; done
done
