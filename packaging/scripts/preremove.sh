#!/bin/sh
# Stops and disables edged before its files go. The outbox in /var/lib/edged
# stays; events in it are delivered when edged is installed again.
set -e
if [ "$1" = remove ] || [ "$1" = purge ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop edged.service || true
	fi
	if command -v systemctl >/dev/null; then
		systemctl disable edged.service >/dev/null 2>&1 || true
	fi
fi
exit 0
