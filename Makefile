# ksb — see README.md. `make devnet` runs the whole cycle; `make test` runs the tests.
GO        ?= go
BIN       ?= bin/ksb
# Fuzz time per target for `make fuzz` (go test -fuzztime syntax).
FUZZTIME  ?= 60s
# package:FuzzTarget pairs run by `make fuzz`.
FUZZ_TARGETS ?= ./envelope:FuzzOpen ./envelope/internal/xzstream:FuzzDecode ./keyshare:FuzzParse ./attest:FuzzDecodeTx ./p2p/internal/pb:FuzzDecode
# The commit `ksb --version` reports when the toolchain records none (a git
# worktree, -buildvcs=false): git describe, "-dirty" for uncommitted changes.
COMMIT    ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null)
LDFLAGS   ?= -X main.commit=$(COMMIT)
# go test -benchtime for `make bench`.
BENCHTIME ?= 1x

.PHONY: all build test vet deps bench fuzz devnet clean

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
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

devnet:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ksb devnet

clean:
	rm -rf bin
