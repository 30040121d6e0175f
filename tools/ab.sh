#!/usr/bin/env bash
# Interleaved before/after comparison of two goro builds beside Go, for a change that must not
# slow anything down (the peers runner measures one goro checkout at a time).
#
#   tools/ab.sh BEFORE_BIN AFTER_BIN [RUNS] [WORKLOAD[:WORKERS] ...]
#
# BEFORE_BIN/AFTER_BIN: `peer_bench` binaries (cargo build --release --example peer_bench in
# two checkouts). Runs go, before, after, go, before, after, ... RUNS times (default 5) per
# workload and prints each one's median and its ratio to Go's median of the same run.
# Default workloads: pingpong:1 pingpong:2 skynet:2 select:2 mutex:2.
set -euo pipefail
before=$1 after=$2
runs=${3:-5}
shift 2; [ $# -gt 0 ] && shift
go=${GO_BIN:-$(dirname "$0")/../../shared/peers/target/go/peer-go}
[ -x "$go" ] || { echo "no Go peer at $go (build it with ../shared/peers/run.sh once, or set GO_BIN)" >&2; exit 2; }
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(pingpong:1 pingpong:2 skynet:2 select:2 mutex:2)
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
printf '%-12s %-7s %12s %12s %12s %8s %8s %8s\n' workload workers go before after before/go after/go after/before
for wl in "${workloads[@]}"; do
    name=${wl%%:*} workers=${wl#*:}
    [ "$workers" = "$wl" ] && workers=2
    declare -A vals=([go]="" [before]="" [after]="")
    unit=""
    for _ in $(seq "$runs"); do
        for who in go before after; do
            case $who in go) bin=$go ;; before) bin=$before ;; after) bin=$after ;; esac
            line=$(timeout 120 "$bin" "$name" "$workers" | grep '^RESULT' || true)
            [ -n "$line" ] || { echo "$who $name $workers: no RESULT" >&2; continue; }
            vals[$who]+="$(awk '{print $5}' <<<"$line") "
            unit=$(awk '{print $6}' <<<"$line")
        done
    done
    g=$(tr ' ' '\n' <<<"${vals[go]}" | grep . | median)
    b=$(tr ' ' '\n' <<<"${vals[before]}" | grep . | median)
    a=$(tr ' ' '\n' <<<"${vals[after]}" | grep . | median)
    printf '%-12s %-7s %12s %12s %12s %8.2f %8.2f %8.2f   (%s; before: %s| after: %s)\n' "$name" "$workers" "$g" "$b" "$a" \
        "$(awk -v x="$b" -v y="$g" 'BEGIN{print x/y}')" "$(awk -v x="$a" -v y="$g" 'BEGIN{print x/y}')" \
        "$(awk -v x="$a" -v y="$b" 'BEGIN{print x/y}')" "$unit" "${vals[before]}" "${vals[after]}"
done
