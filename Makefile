# quorumq build, run and test targets. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/quorumq
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test test-short vet fmt clean chaos chaos-short

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/node
	$(GO) build -o bin/quorumq-chaos ./cmd/chaos

# A single node with the default ports (queue 8081, pubsub 8080).
run: build
	./$(BIN) serve

# Everything CI checks: formatting, vet, all tests with the race detector,
# vet of the benchmark harness (its own module), and a short chaos schedule.
test: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -race -timeout 30m ./...
	cd deploy/bench/peers && $(GO) vet ./...
	$(MAKE) chaos-short

# A short fault-injection schedule (about two minutes), on an open cluster
# and then on a secured one (TLS, mutual TLS, gossip key, tokens); fails on
# any violation.
chaos-short:
	$(GO) test -timeout 15m ./deploy/chaos -run TestChaos -chaos.duration=90s -chaos.out=chaos-out/short -v
	$(GO) test -timeout 15m ./deploy/chaos -run TestChaos -chaos.duration=60s -chaos.secure -chaos.out=chaos-out/short-secure -v

# The long fault-injection schedule (38 minutes of faults, 200 or more, then checks);
# as root it also partitions nodes in network namespaces.
chaos: build
	./bin/quorumq-chaos --binary=$(BIN) --long -v

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
