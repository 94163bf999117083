#!/bin/sh
# ingest-budget.sh — CPU budget of a holder's ingest, per pushed copy, by
# component and by side (owners / holder / unlabelled runtime work), next to
# the raw libp2p stream's, from CPU profiles of BenchmarkIngestParallel
# (p2p/bench_test.go labels each side's goroutines with pprof label side=…).
#
#   scripts/ingest-budget.sh [test-binary] [transport] [iterations]
#
# test-binary: a p2p test binary (default: built from this tree with
# go test -c); transport: tcp or quic-v1 (default tcp); iterations: pushes
# per run (default 1000). Core-ms per copy come from the process's rusage
# (user + system) over the timed loop; the split by side and component
# from the profile's samples, scaled to that total.
set -eu
bin=${1:-}
tr=${2:-tcp}
n=${3:-1000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if [ -z "$bin" ]; then
	bin=$dir/p2p.test
	go test -c -o "$bin" ./p2p/
fi
cd p2p
for sub in raw-stream push-badger-fsync; do
	out=$("$bin" -test.run '^$' -test.bench "IngestParallel/$tr/$sub\$" -test.benchtime "${n}x" -test.cpuprofile "$dir/$sub.prof" | grep '^Benchmark')
	echo "$out"
	cpu=$(echo "$out" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "core-ms/op") print $i}')
	# row NAME FILTERS…: the share of the profile's samples that the pprof
	# filters keep, as core-ms per copy.
	row() {
		name=$1
		shift
		pct=$(go tool pprof -top -nodecount=100000 "$@" "$bin" "$dir/$sub.prof" 2>/dev/null |
			sed -n 's/^Showing nodes accounting for [^,]*, \([0-9.]*\)% of .*/\1/p')
		printf '  %-38s %s\n' "$name" "$(echo "${pct:-0} $cpu" | awk '{ printf "%6.3f core-ms/copy (%4.1f %%)", $1 / 100 * $2, $1 }')"
	}
	row "holder, all" -tagfocus side=holder
	row "holder: copy root (hashing)" -tagfocus side=holder -focus 'custody\.VerifyCopyRoot'
	row "holder: receipt signature" -tagfocus side=holder -focus 'p2p\.signReceipt'
	row "holder: store (Badger, sync, digest)" -tagfocus side=holder -focus 'badger/v4|ksb/store\.'
	row "holder: key parsing" -tagfocus side=holder -focus 'ParsePubKey|PubKeyFromPeerID|AddressFromPubKey'
	row "holder: transport" -tagfocus side=holder -focus 'go-yamux|security/noise|internal/poll|net\.\(\*conn\)|multistream'
	row "owners, all" -tagfocus side=owner
	row "owners: receipt verification" -tagfocus side=owner -focus 'Receipt\)\.Verify'
	row "owners: transport" -tagfocus side=owner -focus 'go-yamux|security/noise|internal/poll|net\.\(\*conn\)|multistream'
	row "unlabelled (GC, runtime)" -tagignore side=holder,owner
done
