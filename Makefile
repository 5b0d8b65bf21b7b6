# dkvs: `make` builds everything into done/, `make test` builds and runs
# every test, `make ring` starts the local ring of servers.txt.

GO       ?= go
DONE     := done
GOFLAGS  ?=
# Packages with concurrency run under the race detector in `make test`.
RACE_PKGS := ./dkvs/transport/... ./dkvs/coord/... ./dkvs/storage/... ./dkvs/server/... ./dkvs
FUZZTIME ?= 3s

GO_SOURCES := $(shell find dkvs -name '*.go' -not -name '*_test.go') go.mod go.sum

.PHONY: all build test unit e2e fuzz vet ring stop-ring clean bench-go

all: build

build: $(DONE)/dkvs-server $(DONE)/dkvs-client $(DONE)/dkvs-dump-ring

$(DONE)/dkvs-server: $(GO_SOURCES)
	$(GO) build $(GOFLAGS) -o $@ ./dkvs/cmd/dkvs-server

$(DONE)/dkvs-client: $(GO_SOURCES)
	$(GO) build $(GOFLAGS) -o $@ ./dkvs/cmd/dkvs-client

# The same program answers to the name dkvs-dump-ring.
$(DONE)/dkvs-dump-ring: $(DONE)/dkvs-client
	ln -sf dkvs-client $@

test: build vet unit fuzz e2e

vet:
	@test -z "$$(gofmt -l dkvs tests cgo 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l dkvs tests cgo; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./dkvs/...
	$(GO) test -count=1 -race $(RACE_PKGS)

# Every fuzz target runs briefly; go test -fuzz takes one target at a time.
fuzz:
	@set -e; for pkg in $$($(GO) list ./dkvs/...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
	      { $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; exit 1; }; \
	  done; \
	done

e2e: build
	$(GO) test -count=1 -timeout 15m ./tests/...

# Go benchmarks of the client against three real servers.
bench-go: build
	$(GO) test -run '^$$' -bench . -benchtime 3s ./tests/

ring: build
	$(DONE)/start-ring.sh start servers.txt

stop-ring:
	$(DONE)/start-ring.sh stop

clean:
	find $(DONE) -mindepth 1 -not -name start-ring.sh -not -name dkvs-thin.c -delete
	rm -rf run
