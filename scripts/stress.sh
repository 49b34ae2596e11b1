#!/usr/bin/env bash
# Runs what must not fail on a busy host many times, with the CPU loaded on
# purpose: `icetcp demo` (the README's first command) N times, then the
# timing-sensitive tests with -count K, all beside LOAD busy processes
# (two busy loops are what a media server or a laptop in a call looks
# like on a two-core machine). Prints the counts; exits non-zero on any
# failure and keeps the failing runs' output.
#
#   scripts/stress.sh                    # 1,000 demos and -count 20, two busy loops
#   scripts/stress.sh -quick -n 30 -count 1 -seeds 300   # what CI runs (scripts/test.sh):
#                                        # the demo and the schedule explorer only
#   scripts/stress.sh -load 0            # the same on an idle machine
set -euo pipefail
cd "$(dirname "$0")/.."

runs=1000 count=20 load=2 seeds=20000 quick=0
while [ $# -gt 0 ]; do
  case $1 in
    -n) runs=$2; shift 2 ;;
    -count) count=$2; shift 2 ;;
    -load) load=$2; shift 2 ;;
    -seeds) seeds=$2; shift 2 ;;
    -quick) quick=1; shift ;;
    *) echo "usage: $0 [-n DEMO_RUNS] [-count TEST_COUNT] [-load BUSY_LOOPS] [-seeds SCHEDULES] [-quick]" >&2; exit 2 ;;
  esac
done

out=$(mktemp -d /tmp/icetcp-stress.XXXXXX)
busy=()
stop_load() {
  for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done
  busy=()
}
trap stop_load EXIT INT TERM

go build -o "$out/icetcp" ./cmd/icetcp
for _ in $(seq 1 "$load"); do
  yes >/dev/null &
  busy+=($!)
done
echo "== stress: $load busy loops; output in $out"

failed=0
echo "== icetcp demo × $runs"
start=$SECONDS
for i in $(seq 1 "$runs"); do
  if ! "$out/icetcp" demo --bytes 65536 >"$out/demo-$i.log" 2>&1; then
    failed=$((failed + 1))
    echo "demo run $i failed:"
    tail -5 "$out/demo-$i.log" | sed 's/^/    /'
  else
    rm -f "$out/demo-$i.log"
  fi
done
echo "demo: $runs runs, $failed failed ($((SECONDS - start)) s)"

# The tests whose outcome depends on timing: selection agreement (the
# schedule explorer, in virtual time, with many seeds), the agents over
# real loopback sockets, the relays (embedded and coturn), the punch, and
# the CLI end to end.
echo "== timing-sensitive tests, -count $count"
tests_failed=0
run() {
  if ! go test -race -count="$count" -timeout 60m "$@" >"$out/test.log" 2>&1; then
    tests_failed=$((tests_failed + 1))
    grep -E '^(--- FAIL|FAIL|panic)' "$out/test.log" | head -20
    cp "$out/test.log" "$out/failed-$tests_failed.log"
  fi
  tail -1 "$out/test.log"
}
run -run 'TestExploreSchedules' ./agent -args -explore.seeds="$seeds"
if [ "$quick" = 0 ]; then
run -run 'TestSync|TestMux|TestRelay|TestConnect|TestCloseWrite|TestWrongPassword|TestSimultaneousOpenOnly' ./agent
run -run 'TestSimultaneousOpen|TestSchedule' ./tcpso
run -run 'TestDemo$|TestConnectCarries|TestSecretConnect|TestSIG' ./cmd/icetcp
fi

stop_load
echo "stress: demo $failed/$runs failed; $tests_failed test runs failed"
if [ "$failed" = 0 ] && [ "$tests_failed" = 0 ]; then
  rm -rf "$out" # nothing failed: no output worth keeping
  exit 0
fi
echo "stress: the failing runs' output is in $out"
exit 1
