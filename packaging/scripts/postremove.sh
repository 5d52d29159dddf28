#!/bin/sh
# On purge, removes the state directory (outbox, learned models), the
# configuration directory and the edged user.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/edged /etc/edged
	if getent passwd edged >/dev/null; then
		userdel edged >/dev/null 2>&1 || true
	fi
fi
exit 0
