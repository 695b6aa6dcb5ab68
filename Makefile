# quorumq build, run and test targets. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/quorumq
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test test-short vet fmt clean chaos chaos-short compose-test

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

# Runs docker-compose.yml for real (deploy/compose/stack_test.go), as root:
# its own dockerd (vfs, private state and socket, removed at the end), a
# compose command built from its Go module, images assembled FROM scratch
# from this machine's binaries (nothing pulled), the stack's ports on
# 127.0.0.1. Installs Debian's docker.io, busybox-static, redis-server and
# prometheus when missing.
compose-test:
	@need=""; \
	command -v dockerd >/dev/null || need="$$need docker.io"; \
	dpkg -s busybox-static >/dev/null 2>&1 || need="$$need busybox-static"; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v prometheus >/dev/null || need="$$need prometheus"; \
	command -v ldd >/dev/null || need="$$need libc-bin"; \
	command -v file >/dev/null || need="$$need file"; \
	if [ -n "$$need" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need; \
	fi
	QUORUMQ_COMPOSE_STACK=1 $(GO) test -count=1 -timeout 20m ./deploy/compose -run '^TestStack$$' -v

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
