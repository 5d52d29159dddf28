#!/bin/sh
# Creates the edged system user before the files arrive. The unit adds the
# audio, video and gpio groups; systemd refuses to start a unit whose
# supplementary group does not exist, so gpio (Raspberry Pi OS has it;
# plain Debian does not) is created where missing.
set -e
if [ "$1" = install ] || [ "$1" = upgrade ]; then
	getent group gpio >/dev/null || groupadd --system gpio
	if ! getent passwd edged >/dev/null; then
		useradd --system --user-group --home-dir /var/lib/edged --no-create-home \
			--shell /usr/sbin/nologin --comment "edged sensor daemon" edged
	fi
	usermod -a -G audio,video,gpio edged
fi
exit 0
