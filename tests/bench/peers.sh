#!/usr/bin/env bash
# Vigil against its peers, same machine, same run; prints one Markdown table with absolute
# figures and ratios (Vigil / peer), then the versions and the machine.
#
#   - Vigil agent full collection (`vigil-agent collect`, every check, on /): wall, CPU
#     user+sys, peak RSS; cold (no package-list cache) and warm (the service's steady state);
#   - prometheus-node-exporter: CPU per scrape (from /proc/PID/stat deltas over SCRAPES
#     scrapes) and resident memory after them;
#   - lynis `audit system --quick`: wall, CPU, peak RSS. lynis runs `apt-get update` itself
#     (test PKGS-7392) unless told not to: it runs with a profile that sets
#     `refresh-repositories=no`, so it neither reaches the network nor rewrites the apt lists
#     that the package measurements read; it still does its own upgradable-package check;
#   - `oscap xccdf eval` of the Debian 12 SCAP content (profile `standard`, on /): the content
#     comes from the next Debian release's ssg-debian package, downloaded and unpacked with
#     tests/openscap/fetch-ssg.sh (never installed);
#   - `apt list --upgradable` vs Vigil's pending-update computation (`vigil-agent collect
#     --check packages.pending_updates --check packages.pending_security`);
#   - collector ingest vs raw ClickHouse insert: collector/benches/clickhouse_ingest.rs.
#
# Wall, CPU and peak RSS come from GNU time (`%e %U %S %M`); peak RSS is the largest single
# process of the tree (getrusage semantics), not the sum. Each figure is the median of RUNS runs
# (lynis: LYNIS_RUNS, default 1, it takes most of a minute).
#
# Needs root (lynis, oscap read what root reads) and the Debian archive (packages, ssg). Not
# part of the test command: it is a benchmark. `tests/bench/peers.sh --check` only checks that
# the tools are there and the script parses.
#
# Usage: tests/bench/peers.sh [--check]
#   RUNS=5 LYNIS_RUNS=1 SCRAPES=20 MEASUREMENTS=200000 tests/bench/peers.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
LYNIS_RUNS=${LYNIS_RUNS:-1}
SCRAPES=${SCRAPES:-20}
MEASUREMENTS=${MEASUREMENTS:-200000}
export DEBIAN_FRONTEND=noninteractive

need=()
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v lynis >/dev/null 2>&1 || need+=(lynis)
command -v oscap >/dev/null 2>&1 || need+=(openscap-scanner)
[ -x /usr/bin/time ] || need+=(time)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v clickhouse-server >/dev/null 2>&1 || need+=(clickhouse-server)
if [ "${1:-}" = "--check" ]; then
    echo "peers.sh: syntax ok; missing packages: ${need[*]:-none}"
    exit 0
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "peers: installing ${need[*]}" >&2
    apt-get install -y --no-install-recommends "${need[@]}" >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/vigil-peers.XXXXXX)
exporter_pid=
cleanup() {
    if [ -n "$exporter_pid" ]; then kill "$exporter_pid" 2>/dev/null || true; wait "$exporter_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "peers: building the release binaries" >&2
cargo build --release -q -p vigil-agent -p vigil-collector >&2
agent=$PWD/target/release/vigil-agent

# measure NAME RUNS CMD...: runs CMD (stdout and stderr to files) RUNS times under GNU time and
# sets NAME_wall NAME_cpu (seconds) and NAME_rss (MiB) to the medians.
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
measure() {
    local name=$1 runs=$2
    shift 2
    : >"$work/$name.times"
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err" || true
        tail -n1 "$work/$name.time" >>"$work/$name.times"
    done
    printf -v "${name}_wall" '%s' "$(awk '{ print $1 }' "$work/$name.times" | median)"
    printf -v "${name}_cpu" '%s' "$(awk '{ print $2 + $3 }' "$work/$name.times" | median)"
    printf -v "${name}_rss" '%s' "$(awk '{ printf "%.1f\n", $4 / 1024 }' "$work/$name.times" | median)"
}

echo "peers: vigil-agent collect ($RUNS runs, cold and warm cache)" >&2
measure vigil_cold "$RUNS" "$agent" collect --format json --log warn --cache-dir none
vigil_results=$(grep -o '"check":' "$work/vigil_cold.out" | wc -l)
mkdir -p "$work/cache"
"$agent" collect --format json --log warn --cache-dir "$work/cache" >/dev/null 2>&1
measure vigil_warm "$RUNS" "$agent" collect --format json --log warn --cache-dir "$work/cache"

echo "peers: apt list --upgradable vs vigil-agent pending updates ($RUNS runs)" >&2
measure apt_list "$RUNS" apt list --upgradable
apt_upgradable=$(grep -c upgradable "$work/apt_list.out" || true)
measure vigil_pending "$RUNS" "$agent" collect --format json --log warn --cache-dir none \
    --check packages.pending_updates --check packages.pending_security
"$agent" collect --format json --log warn --cache-dir none --check packages.pending_updates >"$work/pending.json" 2>/dev/null
vigil_pending_count=$(grep -o '"pending_updates": *[0-9]*' "$work/pending.json" | head -n1 | grep -o '[0-9]*$' || echo "?")
measure vigil_pending_warm "$RUNS" "$agent" collect --format json --log warn --cache-dir "$work/cache" \
    --check packages.pending_updates --check packages.pending_security

echo "peers: prometheus-node-exporter ($SCRAPES scrapes)" >&2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus-node-exporter --web.listen-address="127.0.0.1:$port" >"$work/exporter.log" 2>&1 &
exporter_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.1; done
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }
exporter_idle_rss=$(rss_mib "$exporter_pid")
curl -sf "http://127.0.0.1:$port/metrics" >/dev/null # warm-up
ticks0=$(cpu_ticks "$exporter_pid")
for _ in $(seq "$SCRAPES"); do curl -sf "http://127.0.0.1:$port/metrics" >"$work/metrics"; done
ticks1=$(cpu_ticks "$exporter_pid")
hz=$(getconf CLK_TCK)
exporter_cpu=$(awk -v a="$ticks0" -v b="$ticks1" -v n="$SCRAPES" -v hz="$hz" 'BEGIN { printf "%.4f", (b - a) / hz / n }')
exporter_rss=$(rss_mib "$exporter_pid")
exporter_series=$(grep -vc '^#' "$work/metrics")
kill "$exporter_pid"; wait "$exporter_pid" 2>/dev/null || true; exporter_pid=

echo "peers: oscap xccdf eval, Debian 12 content, profile standard ($RUNS runs)" >&2
ds=$(tests/openscap/fetch-ssg.sh target/openscap)
ssg_version=$(ls -t target/openscap/ssg-debian_*.deb | head -n1 | sed 's/.*ssg-debian_\(.*\)_all.deb/\1/')
measure oscap "$RUNS" oscap xccdf eval --profile xccdf_org.ssgproject.content_profile_standard "$ds"
oscap_rules=$(grep -c '^Result' "$work/oscap.out" || true)
oscap_applicable=$(grep '^Result' "$work/oscap.out" | grep -vc 'notapplicable' || true)

echo "peers: lynis audit system --quick ($LYNIS_RUNS runs, refresh-repositories=no)" >&2
printf 'refresh-repositories=no\n' >"$work/vigil-bench.prf"
measure lynis "$LYNIS_RUNS" lynis audit system --quick --no-colors --profile "$work/vigil-bench.prf"
if grep -q 'updating package repository' /var/log/lynis.log 2>/dev/null; then
    echo "peers: lynis refreshed the apt lists despite the profile" >&2
    exit 1
fi
lynis_tests=$(awk -F= '/^lynis_tests_done=/ { print $2 }' /var/log/lynis-report.dat 2>/dev/null || echo "?")

echo "peers: collector ingest vs raw ClickHouse insert ($MEASUREMENTS measurements)" >&2
VIGIL_BENCH_MEASUREMENTS=$MEASUREMENTS cargo bench -q -p vigil-collector --bench clickhouse_ingest \
    >"$work/ingest.out" 2>"$work/ingest.err" || { cat "$work/ingest.err" >&2; exit 1; }
rate() { grep -F "$1" "$work/ingest.out" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }'; }
raw_rate=$(rate 'raw HTTP')
ch_rate=$(rate 'into ClickHouse (')
sqlite_rate=$(rate 'into SQLite')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%.3g\n", a / b }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }

cat <<TABLE
| measurement | Vigil | peer | Vigil / peer |
|---|---:|---:|---:|
| full collection wall: vigil-agent collect (cold) vs lynis --quick | $(ms "$vigil_cold_wall") | $(ms "$lynis_wall") | $(ratio "$vigil_cold_wall" "$lynis_wall") |
| full collection CPU: vigil-agent (cold) vs lynis --quick | $(ms "$vigil_cold_cpu") | $(ms "$lynis_cpu") | $(ratio "$vigil_cold_cpu" "$lynis_cpu") |
| full collection peak RSS: vigil-agent (cold) vs lynis --quick | ${vigil_cold_rss} MiB | ${lynis_rss} MiB | $(ratio "$vigil_cold_rss" "$lynis_rss") |
| wall: vigil-agent (cold) vs oscap xccdf eval (standard) | $(ms "$vigil_cold_wall") | $(ms "$oscap_wall") | $(ratio "$vigil_cold_wall" "$oscap_wall") |
| CPU: vigil-agent (cold) vs oscap xccdf eval | $(ms "$vigil_cold_cpu") | $(ms "$oscap_cpu") | $(ratio "$vigil_cold_cpu" "$oscap_cpu") |
| peak RSS: vigil-agent (cold) vs oscap xccdf eval | ${vigil_cold_rss} MiB | ${oscap_rss} MiB | $(ratio "$vigil_cold_rss" "$oscap_rss") |
| CPU: vigil-agent (warm cache) vs node-exporter one scrape | $(ms "$vigil_warm_cpu") | $(ms "$exporter_cpu") | $(ratio "$vigil_warm_cpu" "$exporter_cpu") |
| memory: vigil-agent peak RSS (warm) vs node-exporter resident after scrapes | ${vigil_warm_rss} MiB | ${exporter_rss} MiB | $(ratio "$vigil_warm_rss" "$exporter_rss") |
| pending updates wall: vigil (cold) vs apt list --upgradable | $(ms "$vigil_pending_wall") | $(ms "$apt_list_wall") | $(ratio "$vigil_pending_wall" "$apt_list_wall") |
| pending updates CPU: vigil (cold) vs apt list --upgradable | $(ms "$vigil_pending_cpu") | $(ms "$apt_list_cpu") | $(ratio "$vigil_pending_cpu" "$apt_list_cpu") |
| pending updates wall: vigil (warm cache) vs apt list --upgradable | $(ms "$vigil_pending_warm_wall") | $(ms "$apt_list_wall") | $(ratio "$vigil_pending_warm_wall" "$apt_list_wall") |
| ingest rows/s: collector → ClickHouse store vs raw TSV insert | ${ch_rate} | ${raw_rate} | $(ratio "$ch_rate" "$raw_rate") |
| ingest rows/s: collector → SQLite store vs raw ClickHouse insert | ${sqlite_rate} | ${raw_rate} | $(ratio "$sqlite_rate" "$raw_rate") |

Scope: vigil-agent ${vigil_results} checks (warm: $(ms "$vigil_warm_wall") wall, $(ms "$vigil_warm_cpu") CPU);
lynis ${lynis_tests} tests; oscap ${oscap_rules} rules, ${oscap_applicable} applicable here;
node-exporter ${exporter_series} series per scrape, ${exporter_idle_rss} MiB resident before scraping;
apt lists ${apt_upgradable} upgradable packages, Vigil ${vigil_pending_count} pending;
ingest ${MEASUREMENTS} measurements (collector/benches/clickhouse_ingest.rs).
Medians of ${RUNS} runs (lynis ${LYNIS_RUNS}), ${SCRAPES} scrapes.

Versions: vigil $("$agent" --version | awk '{ print $2 }') ($(git rev-parse --short HEAD)),
$(prometheus-node-exporter --version 2>&1 | head -n1 | awk '{ print "node_exporter " $3 }'),
lynis $(lynis --version), $(oscap --version | head -n1 | awk '{ print "oscap " $NF }'), ssg-debian ${ssg_version},
$(dpkg-query -W -f 'clickhouse-server ${Version}' clickhouse-server 2>/dev/null), $(apt --version | head -n1).
Machine: $(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2 }'), $(nproc) vCPU,
$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u +%Y-%m-%d).
TABLE
