# ksb — see README.md. `make devnet` runs the whole cycle; `make test` runs the tests.
GO        ?= go
BIN       ?= bin/ksb
# Fuzz time per target for `make fuzz` (go test -fuzztime syntax).
FUZZTIME  ?= 60s
# package:FuzzTarget pairs run by `make fuzz`, each for FUZZTIME unless it names
# its own -fuzztime after a second colon: the custody targets run a count of
# executions (Nx), so a run reaches the 10^6 issue 10 asks for however loaded
# the machine is.
FUZZ_TARGETS ?= ./envelope:FuzzOpen ./envelope/internal/xzstream:FuzzDecode ./keyshare:FuzzParse ./attest:FuzzDecodeTx ./attest:FuzzProve ./p2p/internal/pb:FuzzDecode ./custody:FuzzVerify:1000000x ./custody:FuzzChallenge:1000000x
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
# took. It first runs the 8-node TestRun and the 6-node TestSimCommand (KSB_SIM_TEST=1;
# too slow with -race for `make test`).
SIM_NODES ?= 25,50,100,200
SIM_OUT   ?= docs/performance-sim
SIM_FLAGS ?= --transport quic --poll-interval 20s --heartbeat-interval 60s --epoch-blocks 90 --phase-timeout 10m --mesh-timeout 1m --components 40

.PHONY: all build test vet deps proto proto-check bench fuzz chaos sim devnet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ksb

deps:
	@./scripts/deps.sh

# `make proto` regenerates the Go code of every .proto file under proto/ with
# protoc and the protoc-gen-go that scripts/deps.sh pins to go.mod's
# google.golang.org/protobuf; each file's go_package says where its code goes.
# `make proto-check` (part of `make test`) regenerates into a temporary
# directory and fails if the committed code differs.
PROTOC_GEN_GO := $(CURDIR)/bin/tools/protoc-gen-go
PROTO_FILES   := $(shell find proto -name '*.proto' | sort)
PROTOC_CMD     = protoc -I proto --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --go_opt=module=github.com/ksb-project/ksb

proto: deps
	$(PROTOC_CMD) --go_out=. $(PROTO_FILES)

proto-check: deps
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(PROTOC_CMD) --go_out=$$tmp $(PROTO_FILES); \
	stale=0; for f in $$(cd $$tmp && find . -name '*.pb.go' | sort); do \
		if ! cmp -s "$$tmp/$$f" "$$f"; then echo "proto-check: $$f is stale or missing: run make proto" >&2; stale=1; fi; \
	done; \
	for f in $$(git ls-files '*.pb.go'); do \
		[ -f "$$tmp/$$f" ] || { echo "proto-check: $$f has no .proto under proto/" >&2; stale=1; }; \
	done; \
	exit $$stale

vet:
	$(GO) vet ./...

test: deps proto-check vet
	$(GO) test -race -count=1 -timeout 9m ./...

# One package's benchmarks at a time (-p 1): with go test's default of one
# package per core, BenchmarkStateStore ran beside the envelope, recovery and
# ingest benchmarks and each measured the other's load. Every benchmark
# runs once (BENCHTIME=1x): a run of them all, 16-20 minutes on 2 shared
# cores; docs/performance.md gives the longer command behind each figure.
bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

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
	KSB_SIM_TEST=1 $(GO) test -count=1 -run '^(TestRun|TestSimCommand)$$' ./sim/ ./cmd/ksb/
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ksb-sim ./cmd/ksb
	bin/ksb-sim sim --nodes $(SIM_NODES) --out $(SIM_OUT) $(SIM_FLAGS)

devnet:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ksb devnet

clean:
	rm -rf bin
