#!/bin/sh
# Builds step-ca 0.19.0 from Debian's Go sources into BUILD/stepca/step-ca (BUILD: $1, default
# build/), once: an existing binary newer than main.go is kept. Installs golang-go and
# golang-github-smallstep-certificates-dev first (scripts/deps stepca: apt-get as root).
# Exit status 0: built or cached; 77: Go or the sources cannot be installed here (the caller
# skips); anything else: the build failed.
set -eu
src=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$(dirname "$src")")
out=$(mkdir -p "${1:-$root/build}/stepca" && cd "${1:-$root/build}/stepca" && pwd)
bin=$out/step-ca
if [ -x "$bin" ] && [ ! "$src/main.go" -nt "$bin" ]; then
	exit 0
fi
if ! "$root/scripts/deps" stepca; then
	echo "step-ca: cannot install Go and step-ca's sources (scripts/deps stepca)" >&2
	exit 77
fi
gocode=/usr/share/gocode
if [ ! -d "$gocode/src/github.com/smallstep/certificates/commands" ]; then
	echo "step-ca: no sources in $gocode/src/github.com/smallstep/certificates" >&2
	exit 77
fi
# GOPATH mode: Debian's sources are a GOPATH tree, not modules, and nothing is fetched.
# The cache stays under BUILD/stepca so that `make clean` takes it too.
cd "$src"
GO111MODULE=off GOPATH="$out/gopath:$gocode" GOCACHE="$out/gocache" GOFLAGS= \
	go build -o "$bin.tmp" main.go 2>"$out/build.log" || {
	cat "$out/build.log" >&2
	exit 1
}
mv "$bin.tmp" "$bin"
