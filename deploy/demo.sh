#!/usr/bin/env bash
# The anycatch quick start: the whole platform on this machine.
#
#   sudo ./deploy/demo.sh        (or: sudo make demo)
#
# Installs the Debian packages it needs (BIRD2, NSD, PostgreSQL server
# binaries, iproute2 …), builds the binaries into ./bin, then runs
# `anycatch-lab demo`: an anycast lab in network namespaces, anycatch-server
# with its embedded database, and one probe per lab client. It prints the
# map's URL and runs until Ctrl-C, then removes everything it started.
# Nothing is measured outside the namespaces it creates.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (network namespaces, BGP daemons): run  sudo $0" >&2
  exit 1
fi
export PATH=/usr/local/go/bin:/usr/lib/go/bin:$PATH

need=()
command -v bird   >/dev/null || need+=(bird2)
command -v nsd    >/dev/null || need+=(nsd)
command -v ip     >/dev/null || need+=(iproute2)
command -v ping   >/dev/null || need+=(iputils-ping)
command -v dig    >/dev/null || need+=(dnsutils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "demo: installing ${need[*]}"
  # Debian would start the packages' own daemons in the host namespace;
  # the lab runs its own copies inside namespaces, so keep them stopped.
  policy=/usr/sbin/policy-rc.d; made_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; made_policy=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
fi

if ! command -v go >/dev/null; then
  echo "demo: Go is not installed. anycatch needs Go $(sed -n 's/^go //p' go.mod) or newer: https://go.dev/doc/install" >&2
  exit 1
fi

echo "demo: building into ./bin"
make -s build

exec ./bin/anycatch-lab demo "$@"
