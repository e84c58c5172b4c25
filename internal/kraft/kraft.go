// Package kraft runs real Apache Kafka clusters on loopback: 1 or 3
// combined broker+controller nodes in KRaft mode, each a JVM started from
// the broker's jars that Maven resolves into a cache outside the repository
// (see Resolve). The tests, the benchmark (-kafka real) and a person
// (`make kafka`, cmd/kraft) share it.
//
// Each node listens on free loopback ports (below the kernel's ephemeral
// range, so that a killed node finds them free again) with PLAINTEXT, SASL_PLAINTEXT
// (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, users added when the storage is
// formatted) and SSL (a self-signed certificate made for the cluster), plus
// its controller listener (and, with Options.Advertise, an EXTERNAL one
// advertised behind a proxy). Start returns once Metadata answers with every
// broker; Close kills the JVMs and deletes the cluster's data. The JVMs die
// with the process that started them (PR_SET_PDEATHSIG), and a later Start
// removes what a killed process left behind.
package kraft

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkaedge/kafkaedge/internal/testcert"
)

// User is a SASL user, known to every mechanism (PLAIN and both SCRAMs).
type User struct{ Name, Password string }

// DefaultUsers are the users a cluster has unless Options.Users says
// otherwise.
var DefaultUsers = []User{{Name: "kafkaedge", Password: "kafkaedge-secret"}}

// DefaultJVM are the JVM options of a node unless Options.JVM says
// otherwise: a small heap and a quick start, so that three nodes fit
// beside the tests on 2 cores.
var DefaultJVM = []string{"-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"}

// Options configure a cluster.
type Options struct {
	Version string   // Kafka version; default Latest
	Brokers int      // 1 (default) or 3
	Users   []User   // SASL users; default DefaultUsers
	JVM     []string // JVM options of each node; default DefaultJVM
	JMX     bool     // open a JMX port on each node (Node.JMXAddr)
	Props   []string // extra server properties, "key=value"
	Dir     string   // parent of the cluster's data; default os.TempDir()
	Log     io.Writer

	// Advertise, when set, gives each node one more PLAINTEXT listener,
	// EXTERNAL, on a port of its own (Node.External), advertised at the
	// address Advertise returns for the node: a proxy in front of it, for
	// a test that cuts clients off a broker the cluster still sees alive
	// (inter-broker and controller traffic keep their own listeners).
	// Clients bootstrapped from ExternalBootstrap see only those addresses.
	// It is called again with fresh ports if Start starts over.
	Advertise func(n *Node) string
}

// Cluster is a running Kafka cluster.
type Cluster struct {
	Version string
	ID      string  // the cluster id
	Users   []User  // SASL users
	CertPEM []byte  // the SSL listeners' certificate: the CA a client trusts
	Nodes   []*Node // by index; node ids are 1..n

	dir, lib string
	root     string // where the cluster's folder and port claims are
	ports    []int  // the ports it claimed
	log      io.Writer
	jvm      []string
	closed   sync.Once
}

// Node is one broker+controller process.
type Node struct {
	ID                              int32
	Plain, SASL, SSL, Ctrl, JMXPort int
	External                        int    // the EXTERNAL listener's port (0 unless Options.Advertise)
	Advertised                      string // the EXTERNAL listener's advertised address
	Dir                             string // config, data and server.log

	c      *Cluster
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	paused bool          // stopped with SIGSTOP (Pause) and not resumed
}

// Addr is the node's PLAINTEXT listener.
func (n *Node) Addr() string { return addr(n.Plain) }

// JMXAddr is the node's JMX port ("" unless Options.JMX).
func (n *Node) JMXAddr() string {
	if n.JMXPort == 0 {
		return ""
	}
	return addr(n.JMXPort)
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Bootstrap lists the PLAINTEXT listeners.
func (c *Cluster) Bootstrap() []string { return c.listeners(func(n *Node) int { return n.Plain }) }

// SASLBootstrap lists the SASL_PLAINTEXT listeners.
func (c *Cluster) SASLBootstrap() []string { return c.listeners(func(n *Node) int { return n.SASL }) }

// ExternalBootstrap lists the EXTERNAL listeners' advertised addresses
// (nil unless Options.Advertise).
func (c *Cluster) ExternalBootstrap() []string {
	var out []string
	for _, n := range c.Nodes {
		if n.Advertised != "" {
			out = append(out, n.Advertised)
		}
	}
	return out
}

// SSLBootstrap lists the SSL listeners.
func (c *Cluster) SSLBootstrap() []string { return c.listeners(func(n *Node) int { return n.SSL }) }

func (c *Cluster) listeners(port func(*Node) int) []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = addr(port(n))
	}
	return out
}

// Node returns the node with id (1..n), or nil.
func (c *Cluster) Node(id int32) *Node {
	if id < 1 || int(id) > len(c.Nodes) {
		return nil
	}
	return c.Nodes[id-1]
}

// CAFile is the path of CertPEM on disk.
func (c *Cluster) CAFile() string { return filepath.Join(c.dir, "ca.pem") }

// Start resolves the version's jars (once per machine), writes the nodes'
// configs, formats their storage, starts them and waits until Metadata
// answers with every broker (at most 3 minutes, or ctx). On error nothing
// is left running.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Version == "" {
		o.Version = Latest
	}
	if o.Brokers == 0 {
		o.Brokers = 1
	}
	if o.Brokers != 1 && o.Brokers != 3 {
		return nil, fmt.Errorf("kraft: %d brokers: want 1 or 3", o.Brokers)
	}
	if o.Users == nil {
		o.Users = DefaultUsers
	}
	if o.JVM == nil {
		o.JVM = DefaultJVM
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	root := o.Dir
	if root == "" {
		root = filepath.Join(os.TempDir(), "kafkaedge-kraft")
	}
	sweep(root)
	lib, err := Resolve(ctx, o.Version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	// The ports are free when picked and released just before the JVMs
	// bind them; a process that binds a fixed port can take one in
	// between. That node then fails with "Address already in use": start
	// again on fresh ports (a bounded number of times).
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, o, root, lib)
		var taken *portTakenError
		if err == nil || !errors.As(err, &taken) || attempt == 3 {
			return c, err
		}
		fmt.Fprintf(o.Log, "kraft: %v; starting again on fresh ports\n", taken)
	}
}

// portTakenError says a node could not bind one of its ports.
type portTakenError struct {
	node int32
	line string
}

func (e *portTakenError) Error() string {
	return fmt.Sprintf("node %d could not bind its port: %s", e.node, e.line)
}

// start is one attempt of Start on fresh ports and a fresh folder.
func start(ctx context.Context, o Options, root, lib string) (*Cluster, error) {
	dir, err := os.MkdirTemp(root, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Version: o.Version, ID: clusterID(), Users: o.Users, dir: dir, lib: lib, log: o.Log, jvm: o.JVM}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	cert, key, err := testcert.New("kafkaedge test broker")
	if err != nil {
		return nil, err
	}
	c.CertPEM = cert
	if err := os.WriteFile(c.CAFile(), cert, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "keystore.pem"), append(append([]byte(nil), key...), cert...), 0o600); err != nil {
		return nil, err
	}
	const perNode = 6
	ports, err := pickPorts(root, o.Brokers*perNode)
	if err != nil {
		return nil, err
	}
	c.root, c.ports = root, ports
	for i := range o.Brokers {
		p := ports[perNode*i:]
		n := &Node{ID: int32(i + 1), Plain: p[0], SASL: p[1], SSL: p[2], Ctrl: p[3],
			Dir: filepath.Join(dir, "node-"+strconv.Itoa(i+1)), c: c}
		if o.JMX {
			n.JMXPort = p[4]
		}
		if o.Advertise != nil {
			n.External = p[5]
			n.Advertised = o.Advertise(n)
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.writeConfig(n, o.Props); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(c.log, "kraft: formatting %d node(s) of Kafka %s in %s\n", o.Brokers, o.Version, dir)
	if err := c.format(ctx); err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		if err := n.start(); err != nil {
			return nil, err
		}
	}
	if err := c.WaitReady(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// clusterID is a random Kafka cluster id (a UUID in URL-safe base64). Like
// Kafka's Uuid.randomUuid it never starts with '-', which the storage
// tool's argument parser would take for an option.
func clusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// pickPorts is freePorts; a test replaces it to hand out a taken port.
var pickPorts = freePorts

// freePorts picks n distinct free loopback ports and claims them under
// root (see claimPort) until Close. The ports are released just before the
// JVMs bind them (see Start for a port taken in between).
//
// They come from below the kernel's ephemeral range, where neither an
// outgoing connection nor a bind to port 0 can take them: a killed node
// must find its ports free when it restarts, and with ports from the
// ephemeral range any process's connection could hold one by then.
func freePorts(root string, n int) ([]int, error) {
	lo, hi := privatePorts()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for tries := 0; len(out) < n; tries++ {
		if tries == 100*n {
			releasePorts(root, out)
			return nil, fmt.Errorf("kraft: no %d free ports in %d-%d", n, lo, hi-1)
		}
		p := lo + mrand.IntN(hi-lo)
		if !claimPort(root, p) {
			continue
		}
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			releasePorts(root, []int{p})
			continue
		}
		ls = append(ls, l)
		out = append(out, p)
	}
	return out, nil
}

// privatePorts is the range freePorts picks from: the 12,000 ports below
// the start of the kernel's ephemeral range (net.ipv4.ip_local_port_range),
// but not below 10000.
func privatePorts() (lo, hi int) {
	hi = 32768 // Linux's default start
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	return max(10000, hi-12000), max(10100, hi)
}

// claimPort claims port for this process with a file in root/ports, so
// that clusters started by concurrent test processes never share a port,
// even while one of them has a node down. sweep removes the claims of
// processes that are gone.
func claimPort(root string, port int) bool {
	dir := filepath.Join(root, "ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	_, err = f.WriteString(strconv.Itoa(os.Getpid()))
	if cerr := f.Close(); err != nil || cerr != nil {
		releasePorts(root, []int{port})
		return false
	}
	return true
}

// releasePorts removes this process's claims on ports.
func releasePorts(root string, ports []int) {
	for _, p := range ports {
		_ = os.Remove(filepath.Join(root, "ports", strconv.Itoa(p)))
	}
}

// writeConfig writes the node's server.properties and log configuration.
func (c *Cluster) writeConfig(n *Node, extra []string) error {
	if err := os.MkdirAll(filepath.Join(n.Dir, "data"), 0o755); err != nil {
		return err
	}
	var voters []string
	for _, v := range c.Nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", v.ID, v.Ctrl))
	}
	rf := strconv.Itoa(min(len(c.Nodes), 3))
	listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d,SSL://127.0.0.1:%d", n.Plain, n.SASL, n.SSL)
	advertised := listeners
	protocols := "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT"
	if n.External != 0 {
		listeners += fmt.Sprintf(",EXTERNAL://127.0.0.1:%d", n.External)
		advertised += ",EXTERNAL://" + n.Advertised
		protocols += ",EXTERNAL:PLAINTEXT"
	}
	var jaasPlain strings.Builder
	jaasPlain.WriteString("org.apache.kafka.common.security.plain.PlainLoginModule required")
	for _, u := range c.Users {
		fmt.Fprintf(&jaasPlain, " user_%s=%q", u.Name, u.Password)
	}
	jaasPlain.WriteString(";")
	props := []string{
		"process.roles=broker,controller",
		"node.id=" + strconv.Itoa(int(n.ID)),
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		fmt.Sprintf("listeners=%s,CONTROLLER://127.0.0.1:%d", listeners, n.Ctrl),
		"advertised.listeners=" + advertised,
		"listener.security.protocol.map=" + protocols,
		"log.dirs=" + filepath.Join(n.Dir, "data"),
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_plaintext.plain.sasl.jaas.config=" + jaasPlain.String(),
		"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + filepath.Join(c.dir, "keystore.pem"),
		"ssl.client.auth=none",
		"auto.create.topics.enable=false",
		"num.partitions=1",
		"default.replication.factor=" + rf,
		"offsets.topic.replication.factor=" + rf,
		"offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=" + rf,
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=4",
		"share.coordinator.state.topic.replication.factor=" + rf,
		"share.coordinator.state.topic.min.isr=1",
		"min.insync.replicas=1",
		"group.initial.rebalance.delay.ms=0",
		"num.network.threads=2",
		"num.io.threads=2",
		"background.threads=2",
		"num.recovery.threads.per.data.dir=1",
		"num.replica.fetchers=1",
		"log.cleaner.threads=1",
		"log.cleaner.dedupe.buffer.size=8388608",
		"log.segment.bytes=67108864",
		// Test data carries old timestamps (2023, 2024): no retention.
		"log.retention.ms=-1",
		// Followers ask again soon, so that acks=all answers soon.
		"replica.fetch.wait.max.ms=100",
	}
	props = append(props, extra...)
	if err := os.WriteFile(filepath.Join(n.Dir, "server.properties"), []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	logFile := filepath.Join(n.Dir, "server.log")
	log4j1 := "log4j.rootLogger=INFO, file\n" +
		"log4j.appender.file=org.apache.log4j.FileAppender\n" +
		"log4j.appender.file.File=" + logFile + "\n" +
		"log4j.appender.file.layout=org.apache.log4j.PatternLayout\n" +
		"log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n" +
		"log4j.logger.state.change.logger=WARN\n"
	log4j2 := "status = warn\n" +
		"appender.file.type = File\n" +
		"appender.file.name = FILE\n" +
		"appender.file.fileName = " + logFile + "\n" +
		"appender.file.layout.type = PatternLayout\n" +
		"appender.file.layout.pattern = [%d] %p %m (%c)%n\n" +
		"rootLogger.level = info\n" +
		"rootLogger.appenderRef.file.ref = FILE\n" +
		"logger.state.name = state.change.logger\n" +
		"logger.state.level = warn\n"
	if err := os.WriteFile(filepath.Join(n.Dir, "log4j.properties"), []byte(log4j1), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "log4j2.properties"), []byte(log4j2), 0o644)
}

// javaArgs are the JVM arguments of a process of the cluster's class path
// that logs like node n.
func (c *Cluster) javaArgs(n *Node, class string, args ...string) []string {
	a := append([]string(nil), c.jvm...)
	a = append(a, "-Djava.awt.headless=true", "-XX:+ExitOnOutOfMemoryError",
		"-Dlog4j.configuration=file:"+filepath.Join(n.Dir, "log4j.properties"),
		"-Dlog4j2.configurationFile="+filepath.Join(n.Dir, "log4j2.properties"),
		"-cp", filepath.Join(c.lib, "*"))
	if n.JMXPort != 0 && class == "kafka.Kafka" {
		a = append(a, "-Dcom.sun.management.jmxremote", "-Dcom.sun.management.jmxremote.authenticate=false",
			"-Dcom.sun.management.jmxremote.ssl=false", "-Djava.rmi.server.hostname=127.0.0.1",
			"-Dcom.sun.management.jmxremote.host=127.0.0.1",
			"-Dcom.sun.management.jmxremote.port="+strconv.Itoa(n.JMXPort),
			"-Dcom.sun.management.jmxremote.rmi.port="+strconv.Itoa(n.JMXPort))
	}
	a = append(a, class)
	return append(a, args...)
}

// format formats every node's storage, with the SCRAM users, in parallel.
func (c *Cluster) format(ctx context.Context) error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() {
			args := []string{"format", "-t", c.ID, "-c", filepath.Join(n.Dir, "server.properties"), "--ignore-formatted"}
			for _, u := range c.Users {
				for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
					args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, u.Name, u.Password))
				}
			}
			cmd := exec.CommandContext(ctx, "java", c.javaArgs(n, "kafka.tools.StorageTool", args...)...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("kraft: format node %d: %w: %s", n.ID, err, strings.TrimSpace(string(out)))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// start starts the node's JVM.
func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("kraft: node %d is running", n.ID)
	}
	out, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command("java", n.c.javaArgs(n, "kafka.Kafka", filepath.Join(n.Dir, "server.properties"))...)
	cmd.Stdout, cmd.Stderr = out, out
	// The JVM dies with this process, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kraft: start node %d: %w", n.ID, err)
	}
	_ = os.WriteFile(filepath.Join(n.Dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	n.cmd = cmd
	exited := make(chan struct{})
	n.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	fmt.Fprintf(n.c.log, "kraft: node %d started (pid %d, PLAINTEXT %s)\n", n.ID, cmd.Process.Pid, n.Addr())
	return nil
}

// running reports whether the node's process is alive, and its exit channel.
func (n *Node) running() (bool, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false, nil
	}
	select {
	case <-n.exited:
		return false, n.exited
	default:
		return true, n.exited
	}
}

// signal sends sig to the node's JVM and waits up to wait for it to exit;
// past that it is killed.
func (n *Node) signal(sig syscall.Signal, wait time.Duration) {
	n.mu.Lock()
	cmd, exited, paused := n.cmd, n.exited, n.paused
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if paused {
		// A stopped JVM handles no signal but SIGKILL until it continues.
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	select {
	case <-exited:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Kill sends SIGKILL to node id and waits until it is gone.
func (c *Cluster) Kill(id int32) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("kraft: no node %d", id)
	}
	n.signal(syscall.SIGKILL, time.Minute)
	fmt.Fprintf(c.log, "kraft: node %d killed\n", id)
	return nil
}

// Stop stops node id with SIGTERM (a controlled shutdown: its leaderships
// move first), killing it if it has not exited after 30 s.
func (c *Cluster) Stop(id int32) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("kraft: no node %d", id)
	}
	n.signal(syscall.SIGTERM, 30*time.Second)
	fmt.Fprintf(c.log, "kraft: node %d stopped\n", id)
	return nil
}

// Pause stops node id's JVM with SIGSTOP: the process and its sockets
// stay, the kernel still accepts connections on its ports, but nothing is
// answered (a hung broker) until Resume. Kill, Stop, Close and Shutdown
// work on a paused node.
func (c *Cluster) Pause(id int32) error { return c.pause(id, true) }

// Resume continues node id's JVM stopped by Pause (SIGCONT).
func (c *Cluster) Resume(id int32) error { return c.pause(id, false) }

func (c *Cluster) pause(id int32, stop bool) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("kraft: no node %d", id)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("kraft: node %d is not running", id)
	}
	if n.paused == stop {
		return fmt.Errorf("kraft: node %d: paused already %v", id, stop)
	}
	sig, what := syscall.SIGCONT, "resumed"
	if stop {
		sig, what = syscall.SIGSTOP, "paused"
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("kraft: node %d: %w", id, err)
	}
	n.paused = stop
	fmt.Fprintf(c.log, "kraft: node %d %s\n", id, what)
	return nil
}

// ActiveController returns the id of the active controller, the leader of
// the metadata quorum, as the first running node that answers
// DescribeQuorum on its controller listener reports it (its own Raft
// state: a broker listener would forward the request to the active
// controller, and wait for a dead one up to controller.socket.timeout.ms).
// Right after the controller died the answer may still name it: poll
// until it changes.
func (c *Cluster) ActiveController(ctx context.Context) (int32, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var errs []error
	for _, n := range c.Nodes {
		n.mu.Lock()
		up := n.cmd != nil && !n.paused
		n.mu.Unlock()
		if !up {
			continue
		}
		id, err := n.quorumLeader(ctx, req)
		if err == nil {
			return id, nil
		}
		errs = append(errs, fmt.Errorf("node %d: %w", n.ID, err))
	}
	if len(errs) == 0 {
		return -1, errors.New("kraft: no running node")
	}
	return -1, fmt.Errorf("kraft: active controller: %w", errors.Join(errs...))
}

// quorumLeader asks n's controller listener for the leader of the
// metadata quorum.
func (n *Node) quorumLeader(ctx context.Context, req *kmsg.DescribeQuorumRequest) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr(n.Ctrl)), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Straight to the seed: kgo would route DescribeQuorum to the
	// controller it finds with Metadata, which a controller listener does
	// not serve.
	resp, err := req.RequestWith(rctx, cl.SeedBrokers()[0])
	if err != nil {
		return -1, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return -1, err
			}
			if p.LeaderID >= 0 {
				return p.LeaderID, nil
			}
		}
	}
	return -1, errors.New("no quorum leader")
}

// Restart starts a stopped or killed node again on its ports and data and
// waits until it is back in the cluster's metadata.
func (c *Cluster) Restart(ctx context.Context, id int32) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("kraft: no node %d", id)
	}
	if err := n.start(); err != nil {
		return err
	}
	return c.WaitReady(ctx, 2*time.Minute)
}

// WaitReady waits until every running node answers Metadata listing every
// running node as a broker, and fails early with the end of its log if a
// node's process exits.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		var alive []*Node
		for _, n := range c.Nodes {
			if ok, exited := n.running(); ok {
				alive = append(alive, n)
			} else if exited != nil {
				if line := n.logLine("Address already in use"); line != "" {
					return &portTakenError{node: n.ID, line: line}
				}
				return fmt.Errorf("kraft: node %d exited while starting; first errors and end of %s:\n%s\n...\n%s",
					n.ID, filepath.Join(n.Dir, "server.log"), n.logErrors(10), n.LogTail(20))
			}
		}
		if last = c.metadataLists(ctx, alive); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kraft: cluster not ready: %w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// metadataLists checks that each of nodes answers Metadata with all of
// them as brokers.
func (c *Cluster) metadataLists(ctx context.Context, nodes []*Node) error {
	for _, n := range nodes {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr()), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
		cancel()
		cl.Close()
		if err != nil {
			return fmt.Errorf("node %d: %w", n.ID, err)
		}
		if len(resp.Brokers) != len(nodes) {
			return fmt.Errorf("node %d lists %d brokers, want %d", n.ID, len(resp.Brokers), len(nodes))
		}
		if resp.ControllerID < 0 {
			return fmt.Errorf("node %d: no active controller yet", n.ID)
		}
	}
	return nil
}

// logLine returns the first line of the node's logs that contains sub.
func (n *Node) logLine(sub string) string {
	for _, f := range []string{"server.log", "stdout.log"} {
		b, _ := os.ReadFile(filepath.Join(n.Dir, f))
		for l := range strings.Lines(string(b)) {
			if strings.Contains(l, sub) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

// logErrors returns the first n ERROR or FATAL lines of the node's
// server.log: the cause of a failed start, which the shutdown lines at
// the end of the log do not show.
func (n *Node) logErrors(max int) string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "server.log"))
	var out []string
	for l := range strings.Lines(string(b)) {
		if len(out) < max && (strings.Contains(l, "] ERROR ") || strings.Contains(l, "] FATAL ")) {
			out = append(out, strings.TrimRight(l, "\n"))
		}
	}
	if len(out) == 0 {
		return "(no ERROR or FATAL line)"
	}
	return strings.Join(out, "\n")
}

// LogTail returns the last n lines of the node's server.log (or of its
// stdout when the log is empty).
func (n *Node) LogTail(lines int) string {
	for _, f := range []string{"server.log", "stdout.log"} {
		b, err := os.ReadFile(filepath.Join(n.Dir, f))
		if err != nil || len(b) == 0 {
			continue
		}
		ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		return strings.Join(ls, "\n")
	}
	return "(no log)"
}

// Java returns a command running class (a Kafka tool such as the console
// producer) with the cluster's class path and node 1's log configuration.
func (c *Cluster) Java(ctx context.Context, class string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "java", c.javaArgs(c.Nodes[0], class, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// ConsoleProducerClass is the console producer's class in this version.
func (c *Cluster) ConsoleProducerClass() string {
	if major(c.Version) >= 4 {
		return "org.apache.kafka.tools.ConsoleProducer"
	}
	return "kafka.tools.ConsoleProducer"
}

// Close kills every node and deletes the cluster's data. It is safe to
// call more than once.
func (c *Cluster) Close() {
	c.closed.Do(func() {
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Go(func() { n.signal(syscall.SIGKILL, time.Minute) })
		}
		wg.Wait()
		_ = os.RemoveAll(c.dir)
		releasePorts(c.root, c.ports)
	})
}

// Shutdown stops every node with SIGTERM, kills those still running when
// ctx ends, and deletes the cluster's data.
func (c *Cluster) Shutdown(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(func() {
			wait := 30 * time.Second
			if d, ok := ctx.Deadline(); ok {
				wait = time.Until(d)
			}
			n.signal(syscall.SIGTERM, wait)
		})
	}
	wg.Wait()
	c.Close()
}

// sweep removes the clusters and port claims under root whose starting
// process is gone, killing their JVMs if they outlived it.
func sweep(root string) {
	claims, _ := os.ReadDir(filepath.Join(root, "ports"))
	for _, e := range claims {
		f := filepath.Join(root, "ports", e.Name())
		if b, err := os.ReadFile(f); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil && !alive(pid) {
				_ = os.Remove(f)
			}
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		owner, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(owner)
		if !ok || err != nil || alive(pid) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		nodes, _ := filepath.Glob(filepath.Join(dir, "node-*"))
		for _, nd := range nodes {
			b, err := os.ReadFile(filepath.Join(nd, "pid"))
			if err != nil {
				continue
			}
			jpid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				continue
			}
			// Only a JVM of this node: its command line names the node's config.
			if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", jpid)); err == nil && strings.Contains(string(cl), nd) {
				_ = syscall.Kill(jpid, syscall.SIGKILL)
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
