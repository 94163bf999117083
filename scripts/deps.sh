#!/usr/bin/env bash
# Installs the tools the build and tests drive, idempotently (does nothing
# when they are present):
#   - Debian's age and xz-utils, used by the envelope interop tests;
#   - Debian's protobuf-compiler (protoc), and protoc-gen-go at the version of
#     google.golang.org/protobuf in go.mod, installed into bin/tools/ of this
#     checkout, for `make proto` and the staleness check of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v age    >/dev/null 2>&1 || missing+=(age)
command -v xz     >/dev/null 2>&1 || missing+=(xz-utils)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)

if [ ${#missing[@]} -gt 0 ]; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: need ${missing[*]} but apt-get is not available; install them with your package manager" >&2
		exit 1
	fi
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
		sudo="sudo"
	fi
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# protoc-gen-go pinned to go.mod's google.golang.org/protobuf: the generated
# code and the runtime it calls come from the same release.
GO=${GO:-go}
want=$($GO list -m -f '{{.Version}}' google.golang.org/protobuf)
bin="$PWD/bin/tools"
have=""
[ -x "$bin/protoc-gen-go" ] && have=$("$bin/protoc-gen-go" --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$want" ]; then
	echo "deps: installing protoc-gen-go $want into $bin" >&2
	mkdir -p "$bin"
	GOBIN="$bin" $GO install "google.golang.org/protobuf/cmd/protoc-gen-go@$want"
fi
