# Sourced by the scripts that cross-compile the Arm NN build for arm64:
# cgo through Debian's aarch64-linux-gnu cross compiler, Arm NN's headers
# and libraries from the sysroot scripts/armnn-sysroot.sh unpacks.
# Sets armnn_sysroot and exports the go build environment.
armnn_sysroot=$(cd "${SYSROOT:-build/sysroot-arm64}" && pwd)
armnn_lib=$armnn_sysroot/usr/lib/aarch64-linux-gnu
export CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
export CGO_CXXFLAGS="-O2 -isystem $armnn_sysroot/usr/include"
export CGO_LDFLAGS="-L$armnn_lib -Wl,-rpath-link,$armnn_lib -Wl,-rpath-link,$armnn_sysroot/lib/aarch64-linux-gnu"
