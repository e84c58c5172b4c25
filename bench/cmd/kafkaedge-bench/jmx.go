package main

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// fetchConsumerMBeans are the brokers' counters of consumer Fetch requests:
// one Meter per request version (the version tag), counted when the broker
// has read the request. Followers' replication fetches are FetchFollower.
const fetchConsumerMBeans = "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=FetchConsumer,*"

// jmxCountSource is the reader that JMX needs a JVM for: one JVM for the
// whole run, started in the JDK's source-file mode.
//
//go:embed JmxCount.java
var jmxCountSource string

// toolJVM are the JVM options of the reader and of JmxTool: a small heap
// and a quick start (they do a few RMI calls, not broker work).
var toolJVM = []string{"-Xms16m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"}

// jmxCounter reads a counter of the brokers over JMX, summed over the
// brokers: through one long-lived JmxCount JVM (a read takes milliseconds),
// or, if that cannot start (a JRE without the compiler the source-file mode
// needs), through Kafka's JmxTool, one JVM per broker and read (about half
// a second: cheap is false, and the fixed-rate slices go uncounted).
type jmxCounter struct {
	addrs []string
	lib   string // Kafka's jars for JmxTool ("" if none)

	mu   sync.Mutex
	cmd  *exec.Cmd // the JmxCount JVM; nil when reading through JmxTool
	dir  string
	in   io.WriteCloser
	out  *bufio.Reader
	dead error // why the reader stopped, if it did
}

// startJMX starts the reader for the JMX addresses (host:port); lib, if
// not empty, holds Kafka's jars for the JmxTool fallback.
func startJMX(ctx context.Context, addrs []string, lib string, logf func(string, ...any)) (*jmxCounter, error) {
	j := &jmxCounter{addrs: addrs, lib: lib}
	err := j.startReader(ctx)
	if err == nil {
		return j, nil
	}
	if lib == "" {
		return nil, fmt.Errorf("JMX reader: %w", err)
	}
	logf("JMX reader (java JmxCount.java) did not start: %v; reading through JmxTool, one JVM per read (fixed-rate points go uncounted)", err)
	if _, err := j.toolRead(ctx, fetchConsumerMBeans, "Count"); err != nil {
		return nil, fmt.Errorf("JmxTool: %w", err)
	}
	return j, nil
}

// startReader writes JmxCount.java to a temporary directory and starts it.
func (j *jmxCounter) startReader(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "kafkaedge-bench-jmx-")
	if err != nil {
		return err
	}
	src := filepath.Join(dir, "JmxCount.java")
	if err := os.WriteFile(src, []byte(jmxCountSource), 0o644); err != nil {
		os.RemoveAll(dir)
		return err
	}
	args := append(append(append([]string(nil), toolJVM...), src), j.addrs...)
	cmd := exec.Command("java", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	in, err := cmd.StdinPipe()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return err
	}
	j.cmd, j.dir, j.in, j.out = cmd, dir, in, bufio.NewReader(outp)
	line, err := j.line(ctx, 90*time.Second)
	if err == nil && line != "ready" {
		err = errors.New(line)
	}
	if err != nil {
		j.stopReader()
		return fmt.Errorf("%w %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// line reads one line of the reader's output, killing the reader if none
// comes within wait.
func (j *jmxCounter) line(ctx context.Context, wait time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	out := j.out
	go func() {
		s, err := out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-t.C:
		j.stopReader()
		return "", fmt.Errorf("no answer within %s", wait)
	case <-ctx.Done():
		j.stopReader()
		return "", ctx.Err()
	}
}

// stopReader ends the JmxCount JVM.
func (j *jmxCounter) stopReader() {
	if j.cmd == nil {
		return
	}
	j.in.Close()
	done := make(chan struct{})
	go func() { _ = j.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = j.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(j.dir)
	j.cmd = nil
}

// cheap reports whether a read costs milliseconds (the JmxCount reader)
// rather than a JVM per broker.
func (j *jmxCounter) cheap() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cmd != nil && j.dead == nil
}

// read returns attr summed over the MBeans matching pattern and over the
// brokers.
func (j *jmxCounter) read(ctx context.Context, pattern, attr string) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.dead != nil {
		return -1, j.dead
	}
	if j.cmd == nil {
		return j.toolRead(ctx, pattern, attr)
	}
	if _, err := io.WriteString(j.in, attr+" "+pattern+"\n"); err != nil {
		j.dead = fmt.Errorf("JMX reader: %w", err)
		j.stopReader()
		return -1, j.dead
	}
	line, err := j.line(ctx, 20*time.Second)
	if err != nil {
		j.dead = fmt.Errorf("JMX reader: %w", err)
		return -1, j.dead
	}
	var sum int64
	fields := strings.Fields(line)
	if len(fields) != len(j.addrs) {
		return -1, fmt.Errorf("JMX reader: %q: want %d counts", line, len(j.addrs))
	}
	for i, f := range fields {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return -1, fmt.Errorf("JMX %s: %s", j.addrs[i], f)
		}
		sum += n
	}
	return sum, nil
}

// toolRead reads the counter with Kafka's JmxTool, one JVM per broker in
// parallel.
func (j *jmxCounter) toolRead(ctx context.Context, pattern, attr string) (int64, error) {
	sums := make([]int64, len(j.addrs))
	errs := make([]error, len(j.addrs))
	var wg sync.WaitGroup
	for i, a := range j.addrs {
		wg.Go(func() {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			args := append(append([]string(nil), toolJVM...), "-cp", filepath.Join(j.lib, "*"),
				"org.apache.kafka.tools.JmxTool", "--jmx-url", "service:jmx:rmi:///jndi/rmi://"+a+"/jmxrmi",
				"--object-name", pattern, "--attributes", attr, "--one-time", "true", "--report-format", "csv")
			cmd := exec.CommandContext(rctx, "java", args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			out, err := cmd.CombinedOutput()
			sums[i], errs[i] = parseJmxTool(string(out), err)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("JmxTool %s: %w", a, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return -1, err
	}
	var sum int64
	for _, s := range sums {
		sum += s
	}
	return sum, nil
}

// parseJmxTool sums the values of JmxTool's one-time CSV output, one line
// per attribute: `<object name>:<attribute>,"<value>"`, and a line
// `time,"<ms>"`. JmxTool exits 1 with "No matched attributes for the
// queried objects" when no MBean matches yet: that is 0.
func parseJmxTool(out string, runErr error) (int64, error) {
	if strings.Contains(out, "No matched attributes") {
		return 0, nil
	}
	if runErr != nil {
		return -1, fmt.Errorf("%w: %s", runErr, lastLines(out, 3))
	}
	var sum int64
	found := false
	for line := range strings.SplitSeq(out, "\n") {
		line = strings.TrimSpace(line)
		i := strings.LastIndex(line, `,"`)
		if i < 0 || !strings.HasSuffix(line, `"`) || line[:i] == "time" {
			continue
		}
		v := line[i+2 : len(line)-1]
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return -1, fmt.Errorf("value %q of %s", v, line[:i])
		}
		sum += int64(f)
		found = true
	}
	if !found {
		return -1, fmt.Errorf("no values in the output: %s", lastLines(out, 3))
	}
	return sum, nil
}

// lastLines returns the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// close stops the reader.
func (j *jmxCounter) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopReader()
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
