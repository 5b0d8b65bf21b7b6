# dkvs: `make` builds everything into done/, `make test` builds and runs
# every test, `make ring` starts the local ring of servers.txt (`make
# ring-tls` the same ring speaking TLS only).

GO       ?= go
DONE     := done
GOFLAGS  ?=
# The unit tests: every package but the black-box tests/, which start
# real processes and run in e2e. All of them run twice, the second time
# under the race detector (about two minutes on two cores).
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e '/tests$$' -e '/tests/')
# A number of executions, not a duration: with a duration, Go 1.26's fuzz
# coordinator can fail at the deadline with "context deadline exceeded"
# and no crasher on a loaded machine (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 50000x
# The C library and the thin C client. CC is make's default (cc) unless set.
C_WARN   := -std=c11 -Wall -Wextra -Werror
C_OPT    ?= -O2

GO_SOURCES := $(shell find dkvs -name '*.go' -not -name '*_test.go') $(shell find dkvs -path '*/assets/*' -type f) go.mod go.sum
CGO_SOURCES := $(filter-out %_test.go,$(wildcard cgo/*.go)) $(wildcard cgo/*.c) include/dkvs.h
LIB := $(DONE)/libdkvs.so

.PHONY: all build deps docs test unit e2e fuzz vet ring ring-tls stop-ring clean bench bench-go soak bench-c bench-redis bench-multikey bench-ycsb

all: build

build: $(DONE)/dkvs-server $(DONE)/dkvs-client $(DONE)/dkvs-dump-ring $(LIB) $(DONE)/dkvs-thin $(DONE)/libdkvs.pc

# The commands are linked statically (no cgo): a process without the
# dynamic loader starts about a millisecond sooner, and scripts start
# servers and clients by the hundred.
$(DONE)/dkvs-server: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $@ ./dkvs/cmd/dkvs-server

$(DONE)/dkvs-client: $(GO_SOURCES)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $@ ./dkvs/cmd/dkvs-client

# The same program answers to the name dkvs-dump-ring.
$(DONE)/dkvs-dump-ring: $(DONE)/dkvs-client
	ln -sf dkvs-client $@

# libdkvs.so: the Go client behind include/dkvs.h (cgo/). The header that
# cgo generates is removed: C programs include the hand-written one.
$(LIB): $(GO_SOURCES) $(CGO_SOURCES)
	CGO_ENABLED=1 $(GO) build $(GOFLAGS) -buildmode=c-shared -o $@ ./cgo
	rm -f $(DONE)/libdkvs.h

# The thin C client finds libdkvs.so beside itself ($$ORIGIN).
$(DONE)/dkvs-thin: $(DONE)/dkvs-thin.c include/dkvs.h $(LIB)
	$(CC) $(C_WARN) $(C_OPT) -Iinclude -o $@ $< -L$(DONE) -ldkvs -Wl,-rpath,'$$ORIGIN'

# pkg-config file for this checkout: PKG_CONFIG_PATH=done pkg-config --cflags --libs libdkvs
$(DONE)/libdkvs.pc: include/dkvs.h Makefile
	@v=$$(sed -n 's/^#define DKVS_VERSION "\(.*\)"$$/\1/p' include/dkvs.h); \
	test -n "$$v" || { echo "no DKVS_VERSION in include/dkvs.h" >&2; exit 1; }; \
	printf '%s\n' \
	  'prefix=$(CURDIR)' \
	  'includedir=$${prefix}/include' \
	  'libdir=$${prefix}/$(DONE)' \
	  '' \
	  'Name: libdkvs' \
	  'Description: C client of dkvs, a Dynamo-style replicated key-value store' \
	  "Version: $$v" \
	  'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -ldkvs' > $@
	@echo "wrote $@"

# deps comes first: what the tests need beyond Go, gcc and make is
# installed (as root on Debian) or named, before anything is built.
test: deps build vet unit fuzz e2e

deps:
	@tests/deps.sh

# staticcheck is a tool of go.mod (go get -tool), at the version pinned
# there: nothing to install.
vet:
	@test -z "$$(gofmt -l dkvs tests cgo 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l dkvs tests cgo; exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

# The race detector's runtime (ThreadSanitizer) sometimes crashes inside
# itself (SIGSEGV in __tsan::SlotLock, or a CHECK failure) in processes
# with very many goroutines: dkvs/ringtest, whole rings in one process,
# runs one test per process under it, and a run that ends in such a crash
# (and in nothing else) runs again; see tests/race-each.sh.
RINGTEST = github.com/dkvs/dkvs/dkvs/ringtest

unit:
	$(GO) test -count=1 $(UNIT_PKGS)
	$(GO) test -count=1 -race $(filter-out $(RINGTEST),$(UNIT_PKGS))
	GO=$(GO) tests/race-each.sh $(RINGTEST)

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

# The black-box packages run one at a time (-p 1): they start many server
# processes and should not compete for the CPUs with each other.
e2e: build
	$(GO) test -count=1 -p 1 -timeout 20m ./tests/...

# Ten minutes of faults against the linearizable mode.
soak: build
	DKVS_LIN_DURATION=10m $(GO) test -count=1 -v -run 'TestLinearizableUnderFaults' -timeout 60m ./tests/lin/

# The standard workloads of dkvs-client bench against rings of servers
# started for the purpose on free ports of 127.0.0.1 (stopped at the end,
# whatever happens); the Markdown table lands in done/bench.md. Takes some
# five minutes on two cores. BENCH_FLAGS="-duration 3s -load-keys 100000"
# for a quick look.
BENCH_FLAGS ?=
bench: $(DONE)/dkvs-server $(DONE)/dkvs-client
	$(GO) run ./tests/benchring -bin $(DONE) -out $(DONE)/bench.md $(BENCH_FLAGS)

# Go benchmarks of the client against three real servers.
bench-go: build
	$(GO) test -run '^$$' -bench . -benchtime 3s ./tests/

# One dkvs_get through the C ABI against the same call from Go, on a
# one-server ring (N=R=1).
bench-c: build
	$(GO) test -run '^$$' -bench CABIGet -benchtime 100000x ./tests/

# redis-benchmark against dkvs's RESP port (N=1 on one server; N=3, W=2,
# R=2 on three) and against a redis-server without persistence, on this
# machine; installs redis-server and redis-tools if missing (as root).
bench-redis: build
	tests/redis-compare.sh

# MSET/MGET of 100 keys against SET/GET of one, through RESP (issue 18).
bench-multikey: build
	tests/redis-multikey.sh

# YCSB workloads A, B, C and F (go-ycsb v1.0.3, built outside the module)
# against the ring's RESP port, redis-server and a three-member etcd; see
# docs/performance.md.
bench-ycsb: $(DONE)/dkvs-server
	tests/ycsb.sh $(DONE)

# The --help blocks of docs/ are rewritten from the built commands (a test
# fails when they differ).
docs: build
	$(GO) test -count=1 -run TestHelpInDocs ./tests/ -args -update-docs

ring: build
	$(DONE)/start-ring.sh start servers.txt

# The same ring speaking TLS only: certificates made in run/certs.
ring-tls: build
	$(DONE)/start-ring.sh start --tls servers.txt

stop-ring:
	$(DONE)/start-ring.sh stop

clean:
	find $(DONE) -mindepth 1 -not -name start-ring.sh -not -name dkvs-thin.c -delete
	rm -rf run
