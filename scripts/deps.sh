#!/usr/bin/env bash
# Installs the system tools the tests drive (Debian's age and xz-utils, used by
# the envelope interop tests). Idempotent: does nothing when they are present.
set -euo pipefail

missing=()
command -v age >/dev/null 2>&1 || missing+=(age)
command -v xz  >/dev/null 2>&1 || missing+=(xz-utils)
[ ${#missing[@]} -eq 0 ] && exit 0

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
