#!/usr/bin/env bash
# The full test suite: installs what the tests need when it is missing, then
# vet, the race-detector run of every package (NAT lab tests included when
# root), and a short run of every fuzz target.
#
#   ./scripts/test.sh            # everything
#   FUZZTIME=30s ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}

need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "== missing ${need[*]} and not root: lab tests will skip" >&2
  fi
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
# Lab tests build namespaces; they refuse to skip when CI=true.
go test -race -count=1 -timeout 40m ./...

echo "== fuzz ($FUZZTIME each)"
for target in \
  ./candidate:FuzzParse \
  ./internal/framing:FuzzReader \
  ./internal/framing:FuzzIsSTUN \
  ./internal/stuntcp:FuzzReadMessage \
  ./signaling:FuzzDecode; do
  pkg=${target%%:*}; name=${target##*:}
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"
done

echo "== leftovers"
left=$(ip netns list 2>/dev/null | grep '^itl' || true)
if [ -n "$left" ]; then
  echo "network namespaces left behind: $left" >&2
  exit 1
fi
echo "all tests passed"
