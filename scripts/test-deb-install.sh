#!/usr/bin/env bash
# Installs the amd64 .deb on this machine as a user would, checks what it
# put where, runs the installed edged with the packaged configuration, and
# removes and purges it. Needs root; CI runs it after scripts/package-deb.sh.
#   scripts/test-deb-install.sh [dist/edged_*_amd64.deb]
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:-$(ls -t dist/edged_*_amd64.deb | head -1)}
[ "$(id -u)" = 0 ] || { echo "test-deb-install: run as root" >&2; exit 2; }
fail() { echo "test-deb-install: FAIL: $*" >&2; exit 1; }
echo "test-deb-install: $deb"

# Leftovers of an interrupted earlier run would hide what this install does.
dpkg -P edged >/dev/null 2>&1 || true
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/edged ./lib/systemd/system/edged.service ./etc/edged/edged.yaml ./usr/share/doc/edged/README.md; do
	grep -q " $f\$" <<<"$contents" || fail "$f is not in the package"
done
dpkg-deb --field "$deb" Package Version Architecture
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/edged/edged.yaml ] || fail "/etc/edged/edged.yaml is not a conffile"

dpkg -i "$deb"
getent passwd edged >/dev/null || fail "no edged user"
id -nG edged | tr ' ' '\n' | grep -qx audio || fail "edged is not in the audio group"
[ "$(stat -c %U /var/lib/edged)" = edged ] || fail "/var/lib/edged is not owned by edged"
[ -e /etc/systemd/system/multi-user.target.wants/edged.service ] || fail "the unit is not enabled"
if [ -d /run/systemd/system ] && systemctl is-active --quiet edged; then fail "the unit was started on install"; fi
version=$(/usr/bin/edged version) || fail "edged version"
grep -q "^edged " <<<"$version" || fail "edged version printed: $version"
echo "$version"
/usr/bin/edged run --config /etc/edged/edged.yaml --check

# Run the installed binary as the edged user with the packaged configuration
# (embedded broker, no sources) in simulator mode, and watch its status.
log=$(mktemp)
# setpriv execs edged itself (no session wrapper), so $! is edged's pid.
setpriv --reuid=edged --regid=edged --init-groups /usr/bin/edged run --config /etc/edged/edged.yaml --simulate >"$log" 2>&1 &
pid=$!
status=""
for _ in $(seq 50); do
	status=$(timeout 2 mosquitto_sub -h 127.0.0.1 -p 1883 -t 'edged/+/status' -C 1 -W 1 2>/dev/null || true)
	[ "$status" = online ] && break
	sleep 0.2
done
sleep 3 # a few seconds of running
kill -0 $pid 2>/dev/null || fail "edged stopped by itself: $(cat "$log")"
kill -TERM $pid
wait $pid && rc=0 || rc=$?
cat "$log"
[ "$status" = online ] || fail "the installed edged did not publish status online (got '$status')"
[ "$rc" = 0 ] || fail "edged exited $rc after SIGTERM"
[ -d /var/lib/edged/outbox ] || fail "no outbox in /var/lib/edged"

dpkg -r edged
[ ! -e /usr/bin/edged ] || fail "dpkg -r left /usr/bin/edged"
[ -e /etc/edged/edged.yaml ] || fail "dpkg -r removed the configuration (a conffile stays until purge)"
dpkg -P edged
[ ! -e /etc/edged ] || fail "purge left /etc/edged"
[ ! -e /var/lib/edged ] || fail "purge left /var/lib/edged"
! getent passwd edged >/dev/null || fail "purge left the edged user"
echo "test-deb-install: PASS (installed, ran, removed, purged)"
