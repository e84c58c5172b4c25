// Command kafkaedge-bench is kafkaedge's benchmark suite: it compares
// kafkaedge, the conventional net/http + gorilla/websocket + franz-go
// service (bench/conventional) and a franz-go client reading the brokers
// directly (the ceiling), side by side on the same brokers and data.
//
// By default it starts an in-process kfake cluster of three brokers; with
// -kafka real it starts a real Apache Kafka of three KRaft brokers on
// loopback for the run (internal/kraft; the JVMs get production-like
// options, benchJVM) and counts the brokers' consumer fetches over JMX;
// -brokers names an external cluster instead (-jmx for its counts). It
// seeds the cluster per scenario, and execs bin/kafkaedge and the
// conventional server as separate processes so that their CPU time and
// memory are read apart from /proc. The scenarios are fetch (per codec),
// fanout, listoffset, fixed-rate, idle and slow-readers, for kafkaedge's
// push subscriptions subscribe-fanout, subscribe-idle and
// subscribe-catchup (subscribe.go), and for its consumer group members
// groups (groups.go; not run unless named: it takes minutes); see
// docs/benchmarks.md. It prints a table and writes results.json,
// results.svg and results.md into -out.
//
// With -soak DURATION it runs the soak instead (soak.go, make soak):
// kafkaedge under churning connections for that long, its RSS, goroutines
// and open files sampled, soak.json and soak.svg written into -out, and a
// non-zero exit unless they stayed flat and every request was answered.
//
//	go run ./bench/cmd/kafkaedge-bench                      # every scenario but groups on kfake, ~4 minutes
//	go run ./bench/cmd/kafkaedge-bench -kafka real          # the same on Apache Kafka 4.4.0, ~4.5 minutes
//	go run ./bench/cmd/kafkaedge-bench -scenarios fixed-rate -systems kafkaedge,conventional
//	go run ./bench/cmd/kafkaedge-bench -scenarios fetch -codec lz4 -duration 10s
//	go run ./bench/cmd/kafkaedge-bench -scenarios groups                     # consumer group members on two nodes
//	go run ./bench/cmd/kafkaedge-bench -brokers kafka1:9092 -jmx kafka1:9999  # an external Kafka
//	go run ./bench/cmd/kafkaedge-bench -soak 10m                             # the soak (make soak)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kafkaedge/kafkaedge/internal/kraft"
)

// The systems compared.
const (
	sysKafkaedge    = "kafkaedge"
	sysConventional = "conventional"
	sysCeiling      = "ceiling"
)

var allSystems = []string{sysKafkaedge, sysConventional, sysCeiling}

// allScenarios in the order they run. -scenarios defaults to
// defaultScenarios: all but groups, whose figures wait on the brokers'
// group heartbeats (minutes at their default interval).
var (
	allScenarios = []string{"fetch", "fanout", "listoffset", "fixed-rate", "idle", "slow-readers",
		scSubFanout, scSubIdle, scSubCatchup, scProduce, scGroups}
	defaultScenarios = slices.DeleteFunc(slices.Clone(allScenarios), func(s string) bool { return s == scGroups })
)

// fixedCommands are the requests the fixed-rate scenario can send.
var fixedCommands = []string{"listoffset", "fetch"}

// The Kafka the suite runs against (-kafka).
const (
	kafkaKfake = "kfake" // in-process, 3 brokers
	kafkaReal  = "real"  // Apache Kafka, 3 KRaft brokers on loopback (internal/kraft)
)

// config is the command line.
type config struct {
	kafka            string   // kafkaKfake or kafkaReal; external when brokers is set
	kafkaVersion     string   // -kafka real
	kafkaJVM         []string // -kafka real: the brokers' JVM options (nil: benchJVM)
	brokers          []string
	jmx              []string      // JMX host:port of the -brokers, to count their fetches
	replication      int           // of the suite's topics; -1: broker default (-kafka real: 3)
	brokerWarmup     time.Duration // -kafka real: small fetches and ListOffsets before the scenarios
	clients          int
	duration         time.Duration
	valueSize        int
	codecs           []string
	scenarios        []string
	systems          []string
	out              string
	kafkaedgeBin     string
	conventionalBin  string
	records          int // per partition of the fetch topics
	fanoutClients    int
	fanoutBacklog    int
	fanoutRate       int
	listClients      int
	fixedCommands    []string      // fixed-rate: listoffset, fetch
	fixedRates       []int         // fixed-rate: total requests per second
	fixedClients     []int         // fixed-rate: clients sharing the rate
	fixedDuration    time.Duration // fixed-rate: measured time of each point and system
	fixedRounds      int           // fixed-rate: slices each point's time is measured in, systems alternating
	idleConns        int
	slowClients      int
	slowRate         int
	slowMaxOutbound  int
	subClients       int // subscribe-fanout: subscribers, and polling clients
	subRate          int // subscribe-fanout: records per second produced
	subBatch         int // subscribe-fanout: records per produce batch
	subIdle          int // subscribe-idle: subscriptions
	subIdlePerConn   int // subscribe-idle: subscriptions per connection
	catchupClients   int // subscribe-catchup: subscribers, and polling clients
	catchupRecords   int // subscribe-catchup: records per partition of its topic
	groupMembers     int // groups: members of its group, half on each kafkaedge node
	groupPartitions  int // groups: partitions of its topic
	groupLeaves      int // groups: members that leave (each replaced), one at a time
	groupRate        int // groups: records per second produced over its partitions
	groupIdle        int // groups/idle: members that only heartbeat
	produceClients   int // produce-closed: clients producing back to back
	producePaced     int // produce-paced: clients producing at producePacedRate each
	producePacedRate int // produce-paced: requests per second of each client
	// groupHeartbeat is the brokers' group.consumer.heartbeat.interval.ms
	// (KIP-848 groups) that -kafka sets; 0 leaves their default (5s).
	groupHeartbeat time.Duration
	topicPrefix    string
	kafkaedgeFlags []string // extra flags for every kafkaedge process
	soak           soakConfig
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "kafkaedge-bench:", err)
		}
		os.Exit(1)
	}
}

// list parses a comma-separated flag value.
func list(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ints parses a comma-separated list of integers in [lo, hi].
func ints(name, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range list(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%s: %q is not an integer in %d..%d", name, f, lo, hi)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: empty", name)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (c config, err error) {
	fs := flag.NewFlagSet("kafkaedge-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.kafka, "kafka", kafkaKfake, "brokers to run against: kfake (in-process, 3 brokers) or real (Apache Kafka, 3 KRaft brokers on loopback, started for the run; needs java 17+ and mvn)")
	fs.StringVar(&c.kafkaVersion, "kafka-version", kraft.Latest, "-kafka real: Apache Kafka `version` (verified: "+strings.Join(kraft.Versions, ", ")+")")
	kjvm := fs.String("kafka-jvm", "", "-kafka real: the brokers' JVM `options`, space-separated (default \""+strings.Join(benchJVM, " ")+"\")")
	brokers := fs.String("brokers", "", "an external Kafka `host:port,...` instead of -kafka; the suite creates and seeds its own topics")
	jmx := fs.String("jmx", "", "with -brokers: the brokers' JMX `host:port,...` (RMI, no auth), to count their consumer fetches (default: not counted)")
	fs.DurationVar(&c.brokerWarmup, "broker-warmup", 4*time.Second, "-kafka real: time the brokers are sent small fetches and ListOffsets before the scenarios, so that their JIT has compiled those paths (0: only a full read of a small topic)")
	fs.IntVar(&c.replication, "replication", -1, "replication factor of the suite's topics (default: the broker default; -kafka real: 3)")
	fs.IntVar(&c.clients, "clients", 4, "fetch clients, one per partition of the fetch topic (also the fast clients of slow-readers)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time of each scenario and system")
	fs.IntVar(&c.valueSize, "value-size", 256, "record value size in `bytes`")
	codec := fs.String("codec", "none,lz4,zstd", "batch compression of the fetch scenario, comma-separated: none, gzip, snappy, lz4, zstd")
	scen := fs.String("scenarios", strings.Join(defaultScenarios, ","), "scenarios to run, comma-separated (also: "+scGroups+")")
	sys := fs.String("systems", strings.Join(allSystems, ","), "systems to compare, comma-separated")
	fs.StringVar(&c.out, "out", "bench/results", "`directory` for results.json, results.svg and results.md")
	fs.StringVar(&c.kafkaedgeBin, "kafkaedge-bin", "bin/kafkaedge", "kafkaedge binary (make build)")
	fs.StringVar(&c.conventionalBin, "conventional-bin", "", "conventional server binary (default: go build ./bench/cmd/conventional into a temp dir)")
	fs.IntVar(&c.records, "records", 100_000, "records per partition of the fetch topics")
	fs.IntVar(&c.fanoutClients, "fanout-clients", 200, "fanout: clients tailing one partition")
	fs.IntVar(&c.fanoutBacklog, "fanout-backlog", 200_000, "fanout: records behind the end where the clients start")
	fs.IntVar(&c.fanoutRate, "fanout-rate", 5000, "fanout: records per second the producer writes while clients read")
	fs.IntVar(&c.listClients, "listoffset-clients", 50, "listoffset: clients issuing ListOffset(-1) back to back")
	fixCmds := fs.String("fixed-commands", strings.Join(fixedCommands, ","), "fixed-rate: requests to send, comma-separated: listoffset, fetch")
	fixRates := fs.String("fixed-rates", "500,2000", "fixed-rate: total requests per second, comma-separated")
	fixClients := fs.String("fixed-clients", "2,5,20", "fixed-rate: clients sharing each rate, comma-separated")
	fs.DurationVar(&c.fixedDuration, "fixed-duration", 3*time.Second, "fixed-rate: measured time of each point (command, rate, clients) and system")
	fs.IntVar(&c.fixedRounds, "fixed-rounds", 3, "fixed-rate: slices of -fixed-duration in which each point is measured, the systems taking turns")
	fs.IntVar(&c.idleConns, "idle-conns", 10_000, "idle: WebSocket connections held open")
	fs.IntVar(&c.slowClients, "slow-clients", 100, "slow-readers: clients reading slowly")
	fs.IntVar(&c.slowRate, "slow-rate", 64<<10, "slow-readers: `bytes` per second each slow client reads")
	fs.IntVar(&c.slowMaxOutbound, "slow-max-outbound", 4<<20, "slow-readers: kafkaedge -max-outbound in `bytes` (its per-connection cap)")
	fs.IntVar(&c.subClients, "subscribe-clients", 1000, "subscribe-fanout: subscribers of one partition (one connection each), and as many polling clients")
	fs.IntVar(&c.subRate, "subscribe-rate", 2000, "subscribe-fanout: records per second the producer writes")
	fs.IntVar(&c.subBatch, "subscribe-batch", 10, "subscribe-fanout: records per produce batch (one batch every batch/rate seconds)")
	fs.IntVar(&c.subIdle, "subscribe-idle", 10_000, "subscribe-idle: idle subscriptions held")
	fs.IntVar(&c.subIdlePerConn, "subscribe-idle-per-conn", 10, "subscribe-idle: subscriptions per connection (kafkaedge's -max-subscriptions is raised above 64)")
	fs.IntVar(&c.catchupClients, "catchup-clients", 20, "subscribe-catchup: subscribers reading its topic from the beginning, and as many polling clients")
	fs.IntVar(&c.catchupRecords, "catchup-records", 100_000, "subscribe-catchup: records per partition of its 4-partition topic")
	fs.IntVar(&c.groupMembers, "groups-members", 100, "groups: members of its consumer group (kafkaedge: one group subscription per connection, half on each of two nodes)")
	fs.IntVar(&c.groupPartitions, "groups-partitions", 100, "groups: partitions of its topic")
	fs.IntVar(&c.groupLeaves, "groups-leaves", 20, "groups: members that leave, one at a time, each replaced once its partitions are pushed by others")
	fs.IntVar(&c.groupRate, "groups-rate", 1000, "groups: records per second produced over its partitions, in turn")
	fs.IntVar(&c.groupIdle, "groups-idle", 1000, "groups: members that only heartbeat (100 per group, one per connection, half on each node), for the nodes' CPU")
	fs.DurationVar(&c.groupHeartbeat, "group-heartbeat", 0, "the brokers' KIP-848 group heartbeat interval (group.consumer.heartbeat.interval.ms; -kafka real also sets group.consumer.min.heartbeat.interval.ms to it); 0: their default, 5s")
	fs.IntVar(&c.produceClients, "produce-clients", 200, "produce-closed: clients each sending single-record requests as fast as answered")
	fs.IntVar(&c.producePaced, "produce-paced-clients", 2000, "produce-paced: clients each sending single-record requests at -produce-paced-rate")
	fs.IntVar(&c.producePacedRate, "produce-paced-rate", 10, "produce-paced: requests per second of each client")
	keFlags := fs.String("kafkaedge-flags", "", "extra space-separated `flags` for kafkaedge, e.g. \"-loops 1\" (default: its defaults)")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "", "prefix of the topics the suite creates (default kafkaedge-bench-<time>-)")
	c.soak.flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.brokers = list(*brokers)
	c.jmx = list(*jmx)
	if *kjvm != "" {
		c.kafkaJVM = strings.Fields(*kjvm)
	}
	switch {
	case c.kafka != kafkaKfake && c.kafka != kafkaReal:
		return c, fmt.Errorf("-kafka: %q: want kfake or real", c.kafka)
	case c.kafka == kafkaReal && len(c.brokers) > 0:
		return c, errors.New("-kafka real starts its own brokers: drop -brokers (or -kafka)")
	case len(c.jmx) > 0 && len(c.brokers) == 0:
		return c, errors.New("-jmx needs -brokers (-kafka real reads its brokers' JMX itself)")
	case c.brokerWarmup < 0 || c.brokerWarmup > 5*time.Minute:
		return c, errors.New("-broker-warmup must be 0..5m")
	case c.replication == 0 || c.replication < -1 || c.replication > 32767:
		return c, errors.New("-replication must be -1 (broker default) or 1..32767")
	case c.groupHeartbeat != 0 && (c.groupHeartbeat < 100*time.Millisecond || c.groupHeartbeat > time.Minute || c.groupHeartbeat%time.Millisecond != 0):
		return c, errors.New("-group-heartbeat must be 0 (the brokers' default) or whole milliseconds in 100ms..1m")
	case c.groupHeartbeat != 0 && len(c.brokers) > 0:
		return c, errors.New("-group-heartbeat configures the brokers -kafka starts: not with -brokers")
	}
	c.kafkaedgeFlags = strings.Fields(*keFlags)
	c.codecs = list(*codec)
	c.scenarios = list(*scen)
	c.systems = list(*sys)
	c.fixedCommands = list(*fixCmds)
	for _, f := range c.fixedCommands {
		if !slices.Contains(fixedCommands, f) {
			return c, fmt.Errorf("-fixed-commands: unknown command %q (have %s)", f, strings.Join(fixedCommands, ", "))
		}
	}
	if c.fixedRates, err = ints("-fixed-rates", *fixRates, 1, 100_000); err != nil {
		return c, err
	}
	if c.fixedClients, err = ints("-fixed-clients", *fixClients, 1, 1000); err != nil {
		return c, err
	}
	for _, cd := range c.codecs {
		if _, ok := codecs[cd]; !ok {
			return c, fmt.Errorf("-codec: unknown codec %q", cd)
		}
	}
	for _, s := range c.scenarios {
		if !slices.Contains(allScenarios, s) {
			return c, fmt.Errorf("-scenarios: unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	for _, s := range c.systems {
		if !slices.Contains(allSystems, s) {
			return c, fmt.Errorf("-systems: unknown system %q (have %s)", s, strings.Join(allSystems, ", "))
		}
	}
	switch {
	case c.clients < 1 || c.clients > 64:
		return c, errors.New("-clients must be 1..64")
	case c.duration < 500*time.Millisecond || c.duration > 10*time.Minute:
		return c, errors.New("-duration must be 500ms..10m")
	case c.valueSize < 1 || c.valueSize > 1<<20:
		return c, errors.New("-value-size must be 1..1048576")
	case c.records < 1 || c.records > 10_000_000:
		return c, errors.New("-records must be 1..10000000")
	case c.fixedDuration < 500*time.Millisecond || c.fixedDuration > 10*time.Minute:
		return c, errors.New("-fixed-duration must be 500ms..10m")
	case c.fixedRounds < 1 || c.fixedDuration/time.Duration(max(c.fixedRounds, 1)) < 100*time.Millisecond:
		return c, errors.New("-fixed-rounds must be >= 1, with slices of -fixed-duration of at least 100ms")
	case c.fanoutClients < 1 || c.listClients < 1 || c.slowClients < 0 || c.idleConns < 1:
		return c, errors.New("client counts must be positive")
	case c.fanoutRate < 0 || c.slowRate < 1024:
		return c, errors.New("-fanout-rate must be >= 0, -slow-rate >= 1024")
	case c.fanoutBacklog < 1:
		return c, errors.New("-fanout-backlog must be >= 1")
	case c.subClients < 1 || c.subClients > 100_000 || c.catchupClients < 1 || c.catchupClients > 10_000:
		return c, errors.New("-subscribe-clients must be 1..100000, -catchup-clients 1..10000")
	case c.subRate < 1 || c.subRate > 1_000_000 || c.subBatch < 1 || c.subBatch > c.subRate:
		return c, errors.New("-subscribe-rate must be 1..1000000, -subscribe-batch 1..-subscribe-rate")
	case c.subIdle < 1 || c.subIdle > 1_000_000 || c.subIdlePerConn < 1 || c.subIdlePerConn > 1000:
		return c, errors.New("-subscribe-idle must be 1..1000000, -subscribe-idle-per-conn 1..1000")
	case c.catchupRecords < 1 || c.catchupRecords > 10_000_000:
		return c, errors.New("-catchup-records must be 1..10000000")
	case c.groupMembers < 2 || c.groupMembers > 10_000 || c.groupPartitions < 1 || c.groupPartitions > 10_000:
		return c, errors.New("-groups-members must be 2..10000, -groups-partitions 1..10000")
	case c.groupLeaves < 1 || c.groupLeaves > 1000 || c.groupRate < 1 || c.groupRate > 1_000_000 || c.groupIdle < 1 || c.groupIdle > 100_000:
		return c, errors.New("-groups-leaves must be 1..1000, -groups-rate 1..1000000, -groups-idle 1..100000")
	case c.produceClients < 1 || c.produceClients > 100_000 || c.producePaced < 1 || c.producePaced > 100_000:
		return c, errors.New("-produce-clients and -produce-paced-clients must be 1..100000")
	case c.producePacedRate < 1 || c.producePacedRate > 10_000:
		return c, errors.New("-produce-paced-rate must be 1..10000")
	}
	if err := c.soak.check(); err != nil {
		return c, err
	}
	if c.topicPrefix == "" {
		c.topicPrefix = fmt.Sprintf("kafkaedge-bench-%d-", time.Now().Unix())
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.soak.duration > 0 {
		return runSoak(ctx, cfg, args, stdout, stderr)
	}

	nofile := raiseFileLimit()
	if need := uint64(cfg.idleConns + 512); slices.Contains(cfg.scenarios, "idle") && nofile < need {
		fmt.Fprintf(stderr, "kafkaedge-bench: open-file limit %d: idle will hold %d connections instead of %d\n",
			nofile, int(nofile)-512, cfg.idleConns)
		cfg.idleConns = max(int(nofile)-512, 1)
	}
	lowerForFiles(&cfg, nofile, stderr)
	if slices.Contains(cfg.systems, sysKafkaedge) {
		if _, err := os.Stat(cfg.kafkaedgeBin); err != nil {
			return fmt.Errorf("kafkaedge binary: %w (run make build, or -systems conventional,ceiling)", err)
		}
	}
	if slices.Contains(cfg.systems, sysConventional) && cfg.conventionalBin == "" {
		dir, err := os.MkdirTemp("", "kafkaedge-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.conventionalBin = filepath.Join(dir, "conventional")
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", cfg.conventionalBin, "./bench/cmd/conventional")
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build the conventional server (run from the repository root, or give -conventional-bin): %w", err)
		}
	}

	b, stopBench, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer stopBench()
	cl := b.cl
	b.prog.note("kafkaedge-bench: %s; %s each; scenarios %s; systems %s", cl.desc, cfg.duration,
		strings.Join(cfg.scenarios, ","), strings.Join(cfg.systems, ","))
	if cl.real != nil {
		if err := b.warmBrokers(ctx); err != nil {
			return fmt.Errorf("warm up the brokers: %w", err)
		}
	}

	for _, s := range cfg.scenarios {
		if ctx.Err() != nil {
			break
		}
		if err := b.scenario(ctx, s); err != nil {
			b.prog.note("%s: %v", s, err)
			b.results = append(b.results, &Result{Scenario: s, System: "-", Error: err.Error()})
		}
	}
	b.prog.close()

	rep := b.report(args)
	printTable(stdout, rep)
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	jsonPath := filepath.Join(cfg.out, "results.json")
	svgPath := filepath.Join(cfg.out, "results.svg")
	if err := writeJSON(jsonPath, rep); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, renderSVG(rep), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", svgPath, err)
	}
	mdPath := filepath.Join(cfg.out, "results.md")
	if err := os.WriteFile(mdPath, renderMarkdown(rep), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", mdPath, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s and %s (%.0fs in all, %s, %d CPUs)\n", jsonPath, svgPath, mdPath,
		time.Since(b.started).Seconds(), runtime.Version(), runtime.NumCPU())
	return ctx.Err()
}

// newBench starts the progress line on stderr and the cluster of cfg;
// stop closes both.
func newBench(ctx context.Context, cfg config, stderr io.Writer) (b *bench, stop func(), err error) {
	started := time.Now()
	prog := newProgress(stderr)
	cl, err := newCluster(ctx, cfg, prog.note)
	if err != nil {
		prog.close()
		return nil, nil, err
	}
	return &bench{cfg: cfg, cl: cl, prog: prog, started: started}, func() { cl.close(); prog.close() }, nil
}
