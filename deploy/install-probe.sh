#!/bin/sh
# Install the anycatch probe as a systemd service. Idempotent: re-running
# upgrades the binary and unit and keeps the existing env file and state.
#
#   sudo deploy/install-probe.sh --binary ./anycatch-probe \
#        --collector https://collector.example.net --token TOKEN
#
# Options:
#   --binary PATH     probe binary to install (default: ./anycatch-probe)
#   --collector URL   written to the env file if it does not exist yet
#   --token TOKEN     one-time enrollment token, likewise
#   --root DIR        install under DIR instead of / (packaging, tests)
#   --no-start        install but do not enable or start the service
set -eu

binary=./anycatch-probe
collector=
token=
root=
start=yes
here=$(cd "$(dirname "$0")" && pwd)

while [ $# -gt 0 ]; do
	case "$1" in
	--binary) binary=$2; shift 2 ;;
	--collector) collector=$2; shift 2 ;;
	--token) token=$2; shift 2 ;;
	--root) root=$2; shift 2 ;;
	--no-start) start=no; shift ;;
	-h|--help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "install-probe: unknown option $1" >&2; exit 2 ;;
	esac
done

[ -x "$binary" ] || { echo "install-probe: $binary is not an executable" >&2; exit 1; }
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
	echo "install-probe: run as root (or use --root DIR)" >&2
	exit 1
fi

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system"
install -d -m 0750 "$root/etc/anycatch-probe"
install -m 0755 "$binary" "$root/usr/local/bin/anycatch-probe.new"
mv -f "$root/usr/local/bin/anycatch-probe.new" "$root/usr/local/bin/anycatch-probe"
install -m 0644 "$here/systemd/anycatch-probe.service" "$root/etc/systemd/system/anycatch-probe.service"

env="$root/etc/anycatch-probe/probe.env"
if [ ! -e "$env" ]; then
	umask 077
	{
		echo "# anycatch probe settings; see docs/probe.md"
		echo "ANYCATCH_COLLECTOR=$collector"
		echo "# One-time token: only needed until the probe has enrolled."
		echo "ANYCATCH_ENROLL_TOKEN=$token"
		echo "#ANYCATCH_MAX_PPS=50"
		echo "#ANYCATCH_MAX_CONCURRENT=4"
		echo "#ANYCATCH_LAT=52.37"
		echo "#ANYCATCH_LON=4.90"
	} >"$env"
	echo "install-probe: wrote $env"
else
	echo "install-probe: keeping existing $env"
fi

if [ -n "$root" ] || [ "$start" = no ]; then
	echo "install-probe: installed; not starting (enable with: systemctl enable --now anycatch-probe)"
	exit 0
fi
if ! grep -q '^ANYCATCH_COLLECTOR=.' "$env"; then
	echo "install-probe: set ANYCATCH_COLLECTOR in $env, then: systemctl enable --now anycatch-probe" >&2
	exit 0
fi
systemctl daemon-reload
systemctl enable anycatch-probe.service
systemctl restart anycatch-probe.service
echo "install-probe: running; check with: anycatch-probe status --state-dir /var/lib/anycatch-probe"
