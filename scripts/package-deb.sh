#!/usr/bin/env bash
# Builds the binaries (scripts/cross-build.sh) and the .deb packages with
# nfpm (run through `go run`, pinned):
#   dist/edged_<version>_arm64.deb         64-bit Raspberry Pi OS / Debian arm64 (Pi 3, 4, 5, Zero 2 W)
#   dist/edged_<version>_armhf.deb         32-bit, ARMv7 (Pi 2, 3, 4 on a 32-bit OS)
#   dist/edged_<version>_armhf-armv6.deb   32-bit, ARMv6 (Pi 1, Zero, Zero W: Raspberry Pi OS's armhf is ARMv6)
#   dist/edged_<version>_amd64.deb
#   scripts/package-deb.sh [targets...]   # arm64 armv7 armv6 amd64
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM="go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(arm64 armv7 armv6 amd64)

# Debian versions must start with a digit: v1.2.3 → 1.2.3; untagged builds
# get 0.0.0~git<date>.<commit>.
desc=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
case "$desc" in
v[0-9]*) version=${desc#v} ;;
*) version="0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo 0)" ;;
esac
version=${VERSION_DEB:-$version}

scripts/cross-build.sh "${targets[@]}" >/dev/null
for target in "${targets[@]}"; do
	case "$target" in
	arm64) arch=arm64 suffix=arm64 ;;
	armv7) arch=armhf suffix=armhf ;;
	armv6) arch=armhf suffix=armhf-armv6 ;;
	amd64) arch=amd64 suffix=amd64 ;;
	*) echo "package-deb: unknown target $target" >&2; exit 2 ;;
	esac
	bin=dist/edged-linux-$target
	out=dist/edged_${version}_${suffix}.deb
	mkdir -p dist/pkg && cp "$bin" dist/pkg/edged
	EDGED_VERSION=$version EDGED_DEB_ARCH=$arch \
		$NFPM package --config packaging/nfpm.yaml --packager deb --target "$out"
done
rm -rf dist/pkg
(cd dist && sha256sum edged-linux-* *.deb > SHA256SUMS)
ls -l dist/*.deb
