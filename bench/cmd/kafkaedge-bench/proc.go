package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// errNoProc means /proc is not available (not Linux): CPU and RSS are not
// measured.
var errNoProc = errors.New("no /proc")

// procSample is one reading of a process's counters.
type procSample struct {
	CPU   time.Duration // utime + stime
	RSS   int64         // VmRSS, bytes
	HWM   int64         // VmHWM (peak RSS), bytes
	valid bool
}

// readProc reads /proc/PID/stat and /proc/PID/status.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("%w: %w", errNoProc, err)
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}, fmt.Errorf("parse /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	s := procSample{CPU: time.Duration(ut+st) * time.Second / clockTicks, valid: true}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("%w: %w", errNoProc, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fs := strings.Fields(val) // "12345 kB"
		if len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			s.RSS = kb << 10
		} else {
			s.HWM = kb << 10
		}
	}
	return s, nil
}

// server is a server process under test.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // WebSocket host:port
	metrics string // kafkaedge's /metrics host:port, from the same log line; "" if none

	mu   sync.Mutex
	tail []string // last lines of its log, for error reports
	done chan struct{}
	err  error // exit status, once done is closed
}

// listenRe finds the bound address in a server's start log line, text
// (listen=127.0.0.1:9080) or JSON ("listen":"127.0.0.1:9080"); metricsRe
// the metrics address kafkaedge logs in the same line (metrics=...).
var listenRe, metricsRe = logAddrRe("listen"), logAddrRe("metrics")

// logAddrRe matches the host:port logged under key.
func logAddrRe(key string) *regexp.Regexp {
	return regexp.MustCompile(`(?:^|[\s{,])"?` + key + `"?[=:]"?([0-9.]+:[0-9]+)`)
}

// startServer execs bin with args and waits for its "listen=ADDR" log line.
func startServer(ctx context.Context, name, bin string, args []string) (*server, error) {
	return startServerWith(ctx, name, bin, args, nil, nil)
}

// startServerWith is startServer with env added to the server's
// environment and every line of its stderr passed to onLine (if not nil,
// from a goroutine of its own).
func startServerWith(ctx context.Context, name, bin string, args, env []string, onLine func(string)) (*server, error) {
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if onLine != nil {
				onLine(line)
			}
			if !found {
				if m := listenRe.FindStringSubmatch(line); m != nil {
					found = true
					if mm := metricsRe.FindStringSubmatch(line); mm != nil {
						s.metrics = mm[1]
					}
					addrc <- m[1]
				}
			}
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 20 {
				s.tail = s.tail[1:]
			}
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case s.addr = <-addrc:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("start %s: exited (%v): %s", name, s.err, s.logTail())
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("start %s: no listen= line within 15s: %s", name, s.logTail())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// logTail returns the last lines the server logged.
func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, " | ")
}

// sample reads the server's counters.
func (s *server) sample() procSample {
	p, err := readProc(s.cmd.Process.Pid)
	if err != nil {
		return procSample{}
	}
	return p
}

// alive reports an error if the server has exited.
func (s *server) alive() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v): %s", s.name, s.err, s.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM, and SIGKILL if the server is still there after 5s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// raiseFileLimit lifts the soft open-file limit to the hard one and returns
// the limit in effect.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		}
	}
	return lim.Cur
}
