# kafkaedge — build, run, test.
GO       ?= go
BIN      := bin/kafkaedge
DEMO_BIN := bin/kafkaedge-demo
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: build run test stress-test chaos lint kafka proto fuzz bench bench-kafka soak microbench clean

## build: compile bin/kafkaedge, the production build (no demo cluster in it)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kafkaedge

## run: compile bin/kafkaedge-demo, the demo build (-tags demo: kafkaedge
## with the embedded demo cluster linked in), and start it with -embedded
run:
	CGO_ENABLED=0 $(GO) build -trimpath -tags demo -ldflags '$(LDFLAGS)' -o $(DEMO_BIN) ./cmd/kafkaedge
	./$(DEMO_BIN) -embedded

## test: lint, then race-test every package (what CI runs); the real-Kafka
## suites run when java and mvn are on PATH (the first run resolves the
## brokers' jars through Maven into ~/.cache/kafkaedge)
test: lint
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || \
	  echo "make test: the real-Kafka suites are skipped: java or mvn is not on PATH (install a JDK 17+ and Maven to run them)"
	$(GO) test -race -count=1 -timeout 9m ./...

## stress-test: make test STRESS_COUNT times (default 20) in a fresh clone of
## HEAD while stress-ng loads every core; stops at the first failed run and
## prints the end of its log (needs stress-ng: apt-get install stress-ng)
STRESS_COUNT ?= 20
stress-test:
	@command -v stress-ng >/dev/null 2>&1 || { echo "make stress-test: stress-ng is not installed (Debian: apt-get install stress-ng)"; exit 2; }
	@set -e; dir=$$(mktemp -d); git clone -q . $$dir/kafkaedge; \
	stress-ng --cpu 0 --timeout $$(( $(STRESS_COUNT) * 15 ))m --quiet & load=$$!; \
	trap 'kill $$load 2>/dev/null; wait $$load 2>/dev/null; rm -rf $$dir' EXIT; \
	echo "make stress-test: $(STRESS_COUNT) runs of make test in $$dir/kafkaedge ($$(git rev-parse --short HEAD)) under stress-ng --cpu 0"; \
	for i in $$(seq 1 $(STRESS_COUNT)); do \
	  start=$$(date +%s); \
	  if ! $(MAKE) -s -C $$dir/kafkaedge test > $$dir/run.log 2>&1; then \
	    echo "run $$i failed after $$(( $$(date +%s) - start )) s; the end of its log:"; tail -n 80 $$dir/run.log; exit 1; \
	  fi; \
	  echo "run $$i/$(STRESS_COUNT) passed in $$(( $$(date +%s) - start )) s"; \
	done

## chaos: the long chaos suite (internal/chaos, KAFKAEDGE_CHAOS=long): the
## production kafkaedge on real 3-node Kafka clusters of each verified
## version, 3 rounds of broker SIGKILL, controller SIGKILL, leader SIGSTOP,
## leader move and closed broker port under load; every request answered in
## time, no message lost, goroutines/fds/RSS back to baseline (about 5 min;
## make test runs the short suite; needs java 17+ and mvn)
chaos:
	KAFKAEDGE_CHAOS=long $(GO) test -race -count=1 -timeout 12m -run '^TestChaos$$' -v ./internal/chaos/

## lint: go vet and staticcheck (pinned), also over the demo build (-tags demo)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) vet ./...
	$(GO) vet -tags demo ./cmd/...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags demo ./cmd/...

## kafka: a real 3-node Apache Kafka cluster on loopback in the foreground;
## prints KAFKA_BOOTSTRAP=... when it answers, Ctrl-C stops it
## (KAFKA_VERSION=3.9.2 for the 3.x line)
KAFKA_VERSION ?=
kafka:
	$(GO) build -o bin/kraft ./cmd/kraft
	./bin/kraft $(if $(KAFKA_VERSION),-version $(KAFKA_VERSION))

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
## franz-go direct, on an in-process 3-broker cluster (about 4 minutes);
## table on stdout, results.{json,svg,md} in bench/results/
bench: build
	$(GO) run ./bench/cmd/kafkaedge-bench $(BENCHFLAGS)

## bench-kafka: the same suite on a real 3-broker Apache Kafka (KRaft, on
## loopback, started and deleted by the run; needs java 17+ and mvn);
## broker fetch counts over JMX (-kafka-version 3.9.2 in BENCHFLAGS for 3.x)
bench-kafka: build
	$(GO) run ./bench/cmd/kafkaedge-bench -kafka real $(BENCHFLAGS)

## soak: kafkaedge for SOAK_DURATION (default 10m; SOAK_DURATION=1m for a
## quick check) on an in-process kfake cluster under 5,000 WebSocket
## connections that close and are replaced every 5-30 s, fetching, asking
## ListOffset and pinging at 1,000 requests/s in all; samples its RSS,
## goroutines and open files, then waits up to 4.5 min for two garbage
## collections with no client; fails unless they stay flat and every
## request is answered; soak.{json,svg} in bench/results/ (SOAKFLAGS: more
## flags; docs/benchmarks.md, "Soak")
SOAK_DURATION ?= 10m
soak: build
	$(GO) run ./bench/cmd/kafkaedge-bench -soak $(SOAK_DURATION) $(SOAKFLAGS)

## microbench: Go micro-benchmarks of the codecs and the request path
microbench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin
