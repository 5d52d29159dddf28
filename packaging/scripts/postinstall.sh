#!/bin/sh
# Makes the state directory and enables the unit without starting it: edit
# /etc/edged/edged.yaml, then `systemctl start edged`. An upgrade restarts a
# running edged.
set -e
if [ "$1" = configure ]; then
	install -d -o edged -g edged -m 0750 /var/lib/edged
	chgrp edged /etc/edged/edged.yaml && chmod 0640 /etc/edged/edged.yaml
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	if command -v systemctl >/dev/null; then
		systemctl enable edged.service >/dev/null 2>&1 || true
	fi
	if [ -n "$2" ] && [ -d /run/systemd/system ] && systemctl is-active --quiet edged.service; then
		systemctl restart edged.service || true
	fi
fi
exit 0
