#!/bin/sh
# Issue 13 item 2's devnet figure, before and after in one run:
# TestRecoverAsProcesses (five `ksb node` processes and the chain process;
# node0 SIGKILLed and wiped but for its mnemonic, one of its holders killed,
# the chain stopped so that its RPC refuses; `ksb recover --bootstrap` the
# survivors) run alternately with OLD_BINARY and NEW_BINARY as every process,
# ROUNDS times each. Prints, per run, the wall time of `ksb recover`
# (process start included) and one scrypt at work factor 18 measured just
# before it on this machine.
#
# usage: scripts/recover-nochain-compare.sh OLD_BINARY NEW_BINARY [ROUNDS]
set -eu
old=$(realpath "$1") new=$(realpath "$2") rounds=${3:-2}
cd "$(dirname "$0")/.."
i=1
while [ "$i" -le "$rounds" ]; do
	for which in old new; do
		bin=$old oldflag=1
		[ "$which" = new ] && bin=$new oldflag=
		if ! out=$(KSB_TEST_OLD_BINARY=$oldflag KSB_TEST_BINARY=$bin go test -count=1 -run '^TestRecoverAsProcesses$' -v ./cmd/ksb/ 2>&1); then
			echo "$out" | tail -60
			echo "$which round $i: FAILED" >&2
			exit 1
		fi
		echo "$out" | sed -n "s/.*recover via gossip, chain refusing: \([^;]*\); one scrypt (work factor 18) just before: \(.*\)\$/$which round $i: recover \1, scrypt \2/p"
	done
	i=$((i + 1))
done
