# kafkaedge — build, run, test.
GO       ?= go
BIN      := bin/kafkaedge
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: build run test proto fuzz bench microbench clean

## build: compile bin/kafkaedge
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kafkaedge

## run: build and start kafkaedge on the embedded demo cluster
run: build
	./$(BIN) -embedded

## test: vet and race-test every package (what CI runs)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...

## proto: regenerate proto/pubsub/pubsub.pb.go with pinned protoc-gen-go
proto:
	./proto/generate.sh

## fuzz: run each fuzz target for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## bench: the benchmark suite, kafkaedge vs a conventional Go server vs
## franz-go direct, on an in-process 3-broker cluster (about 2.5 minutes);
## table on stdout, results.{json,svg,md} in bench/results/
bench: build
	$(GO) run ./bench/cmd/kafkaedge-bench $(BENCHFLAGS)

## microbench: Go micro-benchmarks of the codecs and the request path
microbench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin
