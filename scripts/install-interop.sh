#!/usr/bin/env bash
# Installs what the interop tests (internal/lab/interop) and bench/ice need,
# when it is missing:
#   - libnice from Python: Debian's libnice10, gir1.2-nice-0.1, python3-gi
#     (for /usr/bin/python3; a pyenv python3 has no gi);
#   - libwebrtc for Node: nodejs and npm from Debian when node is missing,
#     then npm @roamhq/wrtc (its Linux binary ships inside the npm package)
#     into $ICETCP_INTEROP_NODE_MODULES, by default
#     $HOME/.cache/icetcp-interop/node_modules, never into the repository.
# pion/ice is a Go module: `go test` fetches it.
#
#   ./scripts/install-interop.sh          # install what is missing
#   ./scripts/install-interop.sh --check  # only say what is missing (exit 1 if anything)
set -euo pipefail

WRTC_VERSION=0.10.0
modules=${ICETCP_INTEROP_NODE_MODULES:-$HOME/.cache/icetcp-interop/node_modules}
prefix=$(dirname "$modules")
check_only=false
[ "${1:-}" = "--check" ] && check_only=true

have_libnice() {
  /usr/bin/python3 -c 'import gi; gi.require_version("Nice", "0.1"); from gi.repository import Nice' >/dev/null 2>&1
}
have_wrtc() {
  command -v node >/dev/null 2>&1 && NODE_PATH=$modules node -e "require('@roamhq/wrtc')" >/dev/null 2>&1
}

missing=()
have_libnice || missing+=(libnice)
have_wrtc || missing+=(wrtc)
if [ ${#missing[@]} -eq 0 ]; then
  echo "== interop tools present: libnice (python3-gi), node with @roamhq/wrtc in $modules"
  exit 0
fi
if $check_only; then
  echo "== interop tools missing: ${missing[*]}" >&2
  exit 1
fi

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "== need root to apt-get install $*; interop tests will skip (CI=true makes them fail)" >&2
    return 1
  fi
  echo "== apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! have_libnice; then
  apt_install libnice10 gir1.2-nice-0.1 python3-gi
fi
if ! have_wrtc; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
  echo "== npm install @roamhq/wrtc@$WRTC_VERSION into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "@roamhq/wrtc@$WRTC_VERSION" >/dev/null
fi

have_libnice || { echo "libnice from /usr/bin/python3 still not importable" >&2; exit 1; }
have_wrtc || { echo "@roamhq/wrtc still not loadable from $modules" >&2; exit 1; }
echo "== interop tools installed"
