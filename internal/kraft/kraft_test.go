package kraft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

func skipWithoutJava(t *testing.T) {
	if m := Missing(); m != "" {
		t.Skip("real Kafka skipped: " + m)
	}
}

// metadata asks addr for Metadata with extra kgo options.
func metadata(t *testing.T, addr string, opts ...kgo.Opt) (*kmsg.MetadataResponse, error) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
}

// TestListeners starts one node of each version and speaks to every
// listener: PLAINTEXT, SASL_PLAINTEXT with the three mechanisms, and SSL
// with the cluster's certificate. Close leaves no process and no data.
func TestListeners(t *testing.T) {
	skipWithoutJava(t)
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c, err := Start(ctx, Options{Version: v})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := metadata(t, c.Bootstrap()[0]); err != nil {
				t.Fatalf("PLAINTEXT: %v", err)
			}
			u := c.Users[0]
			plainAuth := plain.Auth{User: u.Name, Pass: u.Password}.AsMechanism()
			s256 := scram.Auth{User: u.Name, Pass: u.Password}.AsSha256Mechanism()
			s512 := scram.Auth{User: u.Name, Pass: u.Password}.AsSha512Mechanism()
			for name, m := range map[string]kgo.Opt{"PLAIN": kgo.SASL(plainAuth), "SCRAM-SHA-256": kgo.SASL(s256), "SCRAM-SHA-512": kgo.SASL(s512)} {
				if _, err := metadata(t, c.SASLBootstrap()[0], m); err != nil {
					t.Errorf("SASL %s: %v", name, err)
				}
			}
			bad := scram.Auth{User: u.Name, Pass: "wrong"}.AsSha512Mechanism()
			if _, err := metadata(t, c.SASLBootstrap()[0], kgo.SASL(bad)); err == nil {
				t.Error("SCRAM-SHA-512 with a wrong password succeeded")
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(c.CertPEM)
			if _, err := metadata(t, c.SSLBootstrap()[0], kgo.DialTLSConfig(&tls.Config{RootCAs: pool})); err != nil {
				t.Errorf("SSL with the CA: %v", err)
			}
			if _, err := metadata(t, c.SSLBootstrap()[0], kgo.DialTLSConfig(&tls.Config{})); err == nil {
				t.Error("SSL verified against the system roots succeeded")
			}

			pids := jvmPids(t, c)
			c.Close()
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("JVM %d still alive after Close", pid)
				}
			}
			if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
				t.Errorf("data dir %s left after Close (%v)", c.dir, err)
			}
		})
	}
}

func jvmPids(t *testing.T, c *Cluster) []int {
	var pids []int
	for _, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.Dir, "pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(string(b))
		pids = append(pids, pid)
	}
	return pids
}

// TestFaults: on a 3-node cluster, the EXTERNAL listener is advertised at
// the address Options.Advertise gave; ActiveController names a node; a
// paused (SIGSTOP) controller answers nothing while the others elect a new
// controller, and rejoins once resumed; a killed node restarts on its data
// while the others keep answering.
func TestFaults(t *testing.T) {
	skipWithoutJava(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The identity: the EXTERNAL listener advertised at its own port, so
	// that its clients can reach it (a test puts a proxy there instead).
	began := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	c, err := Start(ctx, Options{Brokers: 3, Advertise: func(n *Node) string { return addr(n.External) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step("started")

	ext := c.ExternalBootstrap()
	md, err := metadata(t, ext[0])
	if err != nil {
		t.Fatalf("EXTERNAL: %v", err)
	}
	for _, b := range md.Brokers {
		if n := c.Node(b.NodeID); n == nil || b.Port != int32(n.External) || n.Advertised != addr(n.External) {
			t.Errorf("EXTERNAL metadata lists broker %d at port %d, want its EXTERNAL port", b.NodeID, b.Port)
		}
	}
	if len(md.Brokers) != 3 || len(ext) != 3 {
		t.Fatalf("EXTERNAL: %d brokers, %d addresses", len(md.Brokers), len(ext))
	}

	ctl, err := c.ActiveController(ctx)
	if err != nil || c.Node(ctl) == nil {
		t.Fatalf("ActiveController = %d, %v", ctl, err)
	}
	if err := c.Pause(ctl); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctl); err == nil {
		t.Error("a second Pause succeeded")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Node(ctl).Addr()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	qctx, qcancel := context.WithTimeout(ctx, time.Second)
	_, err = kmsg.NewPtrMetadataRequest().RequestWith(qctx, cl)
	qcancel()
	cl.Close()
	if err == nil {
		t.Errorf("paused node %d answered Metadata", ctl)
	}
	// The others elect a new controller.
	for deadline := time.Now().Add(time.Minute); ; {
		id, err := c.ActiveController(ctx)
		if err == nil && id != ctl {
			step(fmt.Sprintf("controller %d paused, node %d took over", ctl, id))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new controller with %d paused: %d, %v", ctl, id, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Resume(ctl); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx, 2*time.Minute); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	step("resumed, ready")

	if err := c.Kill(2); err != nil {
		t.Fatal(err)
	}
	if _, err := metadata(t, c.Node(1).Addr()); err != nil {
		t.Fatalf("node 1 with node 2 dead: %v", err)
	}
	if err := c.Restart(ctx, 2); err != nil {
		t.Fatal(err)
	}
	md, err = metadata(t, c.Node(2).Addr())
	if err != nil || len(md.Brokers) != 3 {
		t.Fatalf("restarted node 2: %v, %v", md, err)
	}
	step("node 2 killed and restarted")

	// Close kills a paused node too.
	if err := c.Pause(3); err != nil {
		t.Fatal(err)
	}
	pids := jvmPids(t, c)
	c.Close()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("JVM %d still alive after Close", pid)
		}
	}
}

// TestPortTaken: a node whose port was taken between the kernel handing it
// out and the JVM binding it fails with "Address already in use"; Start
// starts the cluster again on fresh ports.
func TestPortTaken(t *testing.T) {
	skipWithoutJava(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPorts = func(root string, n int) ([]int, error) {
		calls++
		ports, err := freePorts(root, n)
		if calls == 1 && err == nil {
			releasePorts(root, ports[:1])
			ports[0] = taken // node 1's PLAINTEXT port
		}
		return ports, err
	}
	defer func() { pickPorts = freePorts }()
	var log strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if calls != 2 || c.Node(1).Plain == taken {
		t.Fatalf("%d port picks, node 1 on %d (taken %d)", calls, c.Node(1).Plain, taken)
	}
	if !strings.Contains(log.String(), "could not bind its port") {
		t.Errorf("the log does not say why it started again:\n%s", log.String())
	}
	if _, err := metadata(t, c.Node(1).Addr()); err != nil {
		t.Fatal(err)
	}
}

// TestSweep: the data and JVMs of a cluster whose starting process died
// without closing it are removed by the next Start.
func TestSweep(t *testing.T) {
	root := t.TempDir()
	// A process that has exited: its pid is free.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := dead.Process.Pid
	stale := filepath.Join(root, strconv.Itoa(pid)+"-1")
	node := filepath.Join(stale, "node-1")
	if err := os.MkdirAll(node, 0o755); err != nil {
		t.Fatal(err)
	}
	// An orphan "JVM": a process whose command line names the node.
	orphan := exec.Command("bash", "-c", `exec -a "jvm-of-$0" sleep 300`, node)
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- orphan.Wait() }()
	// Wait until bash has become the "JVM": while the kernel execs sleep,
	// /proc/PID/cmdline reads empty for a moment, and a sweep then would
	// rightly leave the process alone (a JVM's command line, once it runs,
	// does not change).
	for deadline := time.Now().Add(10 * time.Second); ; {
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", orphan.Process.Pid))
		if strings.HasPrefix(string(cl), "jvm-of-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan did not exec: cmdline %q", cl)
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(node, "pid"), []byte(strconv.Itoa(orphan.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(root, strconv.Itoa(os.Getpid())+"-2")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	if !claimPort(root, 20001) {
		t.Fatal("cannot claim a port")
	}
	staleClaim := filepath.Join(root, "ports", "20002")
	if err := os.WriteFile(staleClaim, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	sweep(root)
	if _, err := os.Stat(staleClaim); !os.IsNotExist(err) {
		t.Errorf("a dead process's port claim kept: %v", err)
	}
	if claimPort(root, 20001) {
		t.Error("a live process's port claim was removed")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale cluster dir kept: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's cluster was removed: %v", err)
	}
	select {
	case err := <-done:
		if ws, ok := orphan.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("orphan ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		_ = orphan.Process.Kill()
		t.Fatal("orphan JVM not killed")
	}
}

// TestFreePorts: the ports are outside the kernel's ephemeral range, free,
// and claimed until released, so a second pick never hands them out.
func TestFreePorts(t *testing.T) {
	root := t.TempDir()
	lo, hi := privatePorts()
	ports, err := freePorts(root, 30)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < lo || p >= hi || seen[p] {
			t.Fatalf("port %d: outside %d-%d or repeated in %v", p, lo, hi-1, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
		if claimPort(root, p) {
			t.Fatalf("port %d claimed twice", p)
		}
	}
	releasePorts(root, ports)
	if !claimPort(root, ports[0]) {
		t.Fatalf("port %d still claimed after release", ports[0])
	}
}

// TestResolveNamesArtifact: a version Maven cannot resolve fails with an
// error naming the artifact.
func TestResolveNamesArtifact(t *testing.T) {
	skipWithoutJava(t)
	t.Setenv("KAFKAEDGE_CACHE", t.TempDir())
	_, err := Resolve(context.Background(), "0.0.1")
	if err == nil || !strings.Contains(err.Error(), "kafka_2.13") || !strings.Contains(err.Error(), "0.0.1") {
		t.Fatalf("Resolve(0.0.1) = %v", err)
	}
	t.Log(err)
	if _, err := Resolve(context.Background(), "4.x"); err == nil {
		t.Fatal("Resolve(4.x) succeeded")
	}
}

// TestClusterID: ids are 22 characters of URL-safe base64 and never start
// with '-' (the storage tool would parse it as an option).
func TestClusterID(t *testing.T) {
	for range 10_000 {
		id := clusterID()
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}
