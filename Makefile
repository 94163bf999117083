# ksb — see README.md. `make devnet` runs the whole cycle; `make test` runs the tests.
GO        ?= go
BIN       ?= bin/ksb
# Fuzz time per target for `make fuzz` (go test -fuzztime syntax).
FUZZTIME  ?= 60s
# package:FuzzTarget pairs run by `make fuzz`, each for FUZZTIME unless it names
# its own -fuzztime after a second colon: the custody targets run a count of
# executions (Nx), so a run reaches the 10^6 issue 10 asks for however loaded
# the machine is.
FUZZ_TARGETS ?= ./envelope:FuzzOpen ./envelope/internal/xzstream:FuzzDecode ./keyshare:FuzzParse ./attest:FuzzDecodeTx ./p2p/internal/pb:FuzzDecode ./custody:FuzzVerify:1000000x ./custody:FuzzChallenge:1000000x
# The commit `ksb --version` reports when the toolchain records none (a git
# worktree, -buildvcs=false): git describe, "-dirty" for uncommitted changes.
COMMIT    ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null)
LDFLAGS   ?= -X main.commit=$(COMMIT)
# go test -benchtime for `make bench`.
BENCHTIME ?= 1x
# `make chaos`: the crash-consistency run (cmd/ksb-chaos, package internal/chaos)
# against a ksb built from this tree. CHAOS_SEED=N replays a schedule (0: a new
# one, printed); CHAOS_FLAGS passes other flags (-cycles N -duration D -faults
# kill,stop,chain-down -keep); CHAOS_TAGS=ksb_unsafe_ack builds the deliberately
# broken holder (acknowledges before writing) that the run must catch.
CHAOS_SEED  ?= 0
CHAOS_FLAGS ?=
CHAOS_TAGS  ?=
# `make sim`: the churn simulation (ksb sim, package sim) for SIM_NODES, each
# size in a process of its own, writing its table, results.json and plots to
# SIM_OUT; SIM_FLAGS passes other flags (see `ksb sim --help`; why these are in
# docs/performance.md, "Churn simulation"). It prints the table and how long it
# took (about 30 minutes on two shared cores).
SIM_NODES ?= 25,50,100,150,200
SIM_OUT   ?= docs/performance-sim
SIM_FLAGS ?= --transport quic --poll-interval 10s --heartbeat-interval 60s --components 40

.PHONY: all build test vet deps bench fuzz chaos sim devnet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ksb

deps:
	@./scripts/deps.sh

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 -timeout 9m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; ft=$(FUZZTIME); \
		case "$$rest" in *:*) ft=$${rest#*:};; esac; \
		echo "== $$pkg $$name ($$ft)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$ft $$pkg; \
	done

chaos:
	$(GO) build -tags '$(CHAOS_TAGS)' -o bin/ksb-chaos-target ./cmd/ksb
	$(GO) run ./cmd/ksb-chaos -ksb bin/ksb-chaos-target -seed $(CHAOS_SEED) $(CHAOS_FLAGS)

sim:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ksb-sim ./cmd/ksb
	bin/ksb-sim sim --nodes $(SIM_NODES) --out $(SIM_OUT) $(SIM_FLAGS)

devnet:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ksb devnet

clean:
	rm -rf bin
