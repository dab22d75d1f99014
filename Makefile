# agenthost — build, test, regenerate the protocol, run.
GO      ?= go
BIN     ?= bin
VERSION ?= 0.1.0-dev
LDFLAGS := -X main.version=$(VERSION)
PLUGINS := bootstrap sql offline openai telegram discord

TOOLS            := $(CURDIR)/.tools
BUF_VERSION      := v1.75.0
PROTOC_GEN_GO    := v1.36.12
PROTOC_GEN_GRPC  := v1.6.0

.PHONY: agenthost build test chromium python proto proto-go proto-sdks proto-breaking run vet bench clean

## agenthost: the agenthost binary, which bundles the first-party plugins
agenthost:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/agenthost ./cmd/agenthost

## build: the agenthost binary and each plugin as a standalone executable in $(BIN)/plugins
build: agenthost
	@for p in $(PLUGINS); do $(GO) build -o $(BIN)/plugins/agenthost-plugin-$$p $$(ls -d ./plugins/*/cmd/agenthost-plugin-$$p) || exit 1; done

## test: vet, formatting, and every test with the race detector (PostgreSQL, Node, Python and browser tests included)
test: vet chromium python
	$(GO) test -race -count=1 -timeout 20m ./...

## chromium: headless Chromium for the browser tests, installed with apt-get when missing (the script says so first)
chromium:
	@scripts/install-chromium.sh || echo "make: Chromium could not be installed; the browser tests will be skipped (outside CI)"

## python: gRPC, protobuf and cryptography for /usr/bin/python3, for the Python SDK's tests, installed with apt-get when missing
python:
	@scripts/install-python-grpc.sh

## vet: gofmt, go vet, and the protocol's lint and breaking-change rules (sdk/proto/buf.yaml)
vet: $(TOOLS)/buf
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd sdk/proto && $(TOOLS)/buf lint
	@$(MAKE) --no-print-directory proto-breaking

# PROTO_BASE is the branch whose protocol plugins may have been built
# against: proto-breaking refuses changes that would break them.
PROTO_BASE ?= main

## proto-breaking: refuse protocol changes that break plugins built against $(PROTO_BASE)'s sdk/proto
proto-breaking: $(TOOLS)/buf
	@git_dir=$$(git rev-parse --path-format=absolute --git-common-dir 2>/dev/null) || { \
		echo "make: not a git checkout, so there is no $(PROTO_BASE) to compare the protocol with; buf breaking skipped"; exit 0; }; \
	if ! git rev-parse -q --verify 'refs/heads/$(PROTO_BASE)^{commit}' >/dev/null; then \
		echo "make: there is no local branch $(PROTO_BASE) to compare the protocol with, so buf breaking is skipped: fetch it (git fetch origin $(PROTO_BASE):$(PROTO_BASE)) or name another with PROTO_BASE=branch"; exit 0; fi; \
	cd sdk/proto && $(TOOLS)/buf breaking --against "$$git_dir#branch=$(PROTO_BASE),subdir=sdk/proto"

## bench: the hop costs next to plain gRPC, the SDK shim, the database and its vector index, the daemon as a whole, its overhead outside model calls at 1k-100k memories (BENCH_MEMORIES), a thousand stored agents (BENCH_AGENTS), calls to the TypeScript and Python SDKs, and the cluster's forwarding and throughput (NATS on 127.0.0.1:4222)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sdk/ ./host/ ./plugins/sqlstore/
	$(GO) test -run '^$$' -bench Daemon -benchtime 1x -count 3 ./cmd/agenthost/
	$(GO) test -run '^$$' -bench ManyAgents -benchtime 1x -count 3 ./cmd/agenthost/
	$(GO) test -run '^$$' -bench HostOverhead -benchtime 1x ./cmd/agenthost/
	$(GO) test -run '^$$' -bench SDK ./sdk/typescript/ ./sdk/python/
	$(GO) test -run '^$$' -bench ClusterForwarding -benchtime 200x ./cmd/agenthost/
	$(GO) test -run '^$$' -bench ClusterThroughput -benchtime 1x ./cmd/agenthost/

## proto: regenerate the protocol's code with pinned tools: Go (sdk/proto), TypeScript (sdk/typescript/src/gen), Python (sdk/python/agenthost_sdk/_proto)
proto: proto-go proto-sdks

proto-go: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	cd sdk/proto && $(TOOLS)/buf generate

# protoc 3.21.12 and grpc_python_plugin 1.51.1 are Debian 12's (the script
# installs them with apt-get when missing); ts-proto is pinned in
# sdk/typescript/package-lock.json.
proto-sdks: $(TOOLS)/buf
	BUF=$(TOOLS)/buf scripts/gen-sdk-proto.sh

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC)

## run: build the agenthost binary (only it) and start the daemon with the default character on port 3000
run: agenthost
	$(BIN)/agenthost start

clean:
	rm -rf $(BIN)
