#!/usr/bin/env bash
# Unpacks Debian's arm64 Arm NN packages (and the C/C++ runtime they need)
# into a sysroot, for cross-compiling the edged-armnn arm64 binary with
# aarch64-linux-gnu-g++ and for running it under qemu-aarch64 -L <sysroot>.
# Nothing is installed: the packages are fetched with apt-get download and
# unpacked with dpkg-deb -x.
#
#   scripts/armnn-sysroot.sh            # into build/sysroot-arm64
#   SYSROOT=/tmp/sr scripts/armnn-sysroot.sh
#
# Needs apt to know arm64 packages: as root this script runs
# `dpkg --add-architecture arm64 && apt-get update` when that is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot=${SYSROOT:-build/sysroot-arm64}
debs=${sysroot}.debs
# The Arm NN 20.08 libraries, the parser's flatbuffers, CpuAcc (NEON: Arm
# Compute Library) and CpuRef, and glibc/libstdc++ for running under qemu.
pkgs=(
	libarmnn22 libarmnn-dev libarmnntfliteparser22 libarmnntfliteparser-dev
	libarmnn-cpuref-backend22 libarmnn-cpuacc-backend22 libarmnnaclcommon22 libarm-compute20
	libflatbuffers2 libc6 libgcc-s1 libstdc++6 gcc-12-base
)

if [ -f "$sysroot/.complete" ]; then
	echo "armnn-sysroot: $sysroot is ready"
	exit 0
fi
if ! apt-cache show libarmnn22:arm64 >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		echo "armnn-sysroot: apt knows no arm64 packages; run: sudo dpkg --add-architecture arm64 && sudo apt-get update" >&2
		exit 1
	fi
	dpkg --add-architecture arm64
	apt-get update -qq
fi
rm -rf "$sysroot" "$debs"
mkdir -p "$sysroot" "$debs"
(cd "$debs" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]/%/:arm64}")
for deb in "$debs"/*.deb; do
	dpkg-deb -x "$deb" "$sysroot"
done
# Debian's usrmerge: the loader and libc live under /usr/lib, qemu looks in /lib.
if [ ! -e "$sysroot/lib" ]; then
	ln -s usr/lib "$sysroot/lib"
fi
test -f "$sysroot/usr/include/armnnTfLiteParser/ITfLiteParser.hpp"
test -e "$sysroot/usr/lib/aarch64-linux-gnu/libarmnnTfLiteParser.so"
touch "$sysroot/.complete"
echo "armnn-sysroot: $sysroot ($(ls "$debs" | wc -l) packages)"
