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

.PHONY: build test proto run vet bench clean

## build: the agenthost binary (with the bundled plugins) and each plugin as a standalone executable
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/agenthost ./cmd/agenthost
	@for p in $(PLUGINS); do $(GO) build -o $(BIN)/plugins/agenthost-plugin-$$p ./plugins/$$p/cmd/agenthost-plugin-$$p || exit 1; done

## test: vet, formatting, and every test with the race detector (PostgreSQL, Node and browser tests included)
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the hop costs next to plain gRPC, the SDK shim, the database, and the daemon as a whole
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sdk/ ./host/ ./plugins/sql/
	$(GO) test -run '^$$' -bench Daemon -benchtime 1x -count 3 ./cmd/agenthost/

## proto: regenerate the Go code of sdk/proto with pinned tools installed under .tools
proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	cd sdk/proto && $(TOOLS)/buf generate

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC)

## run: build and start the daemon with the default character on port 3000
run: build
	$(BIN)/agenthost start

clean:
	rm -rf $(BIN)
