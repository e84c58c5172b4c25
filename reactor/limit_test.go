package reactor

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLimiter: a weighted limiter takes what fits, and one request of any
// size when nothing is taken; waiters are woken in line as what is freed
// serves them; pressure reports a waiter older than the given time.
func TestLimiter(t *testing.T) {
	s := &Server{}
	conn := func() *connState { return &connState{s: s, c: nil} }
	l := newLimiter(10, 4)
	a, b, c := conn(), conn(), conn()
	if !l.acquire(a, 20, 1) {
		t.Fatal("a request larger than max was refused with nothing taken")
	}
	if l.acquire(b, 4, 2) || l.acquire(c, 4, 3) {
		t.Fatal("requests were taken past max")
	}
	if l.acquire(b, 4, 2); len(l.waiters) != 2 {
		t.Fatalf("%d waiters, want 2: a connection waits once", len(l.waiters))
	}
	if got := l.pressure(1); got != 0 {
		t.Fatalf("pressure(1) = %d, want 0: no waiter is that old", got)
	}
	if got := l.pressure(2); got != 20+2*4-10 {
		t.Fatalf("pressure(2) = %d, want %d", got, 20+2*4-10)
	}
	forget(c)
	if len(l.waiters) != 1 || c.slotQueue.Load() != nil {
		t.Fatal("forget left the connection in line")
	}
	l.mu.Lock()
	l.used -= 14 // as release would, without waking (no gnet.Conn here)
	l.mu.Unlock()
	if !l.acquire(c, 4, 4) || l.used != 10 {
		t.Fatalf("a request that fits was refused (used %d)", l.used)
	}
}

// TestMachineMemory: MemTotal and the cgroup limits parse; "max" and
// unreadable files are no limit.
func TestMachineMemory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if n, ok := memTotal(write("meminfo", "MemFree:  10 kB\nMemTotal:       24576000 kB\n")); !ok || n != 24576000<<10 {
		t.Fatalf("memTotal = %d, %v", n, ok)
	}
	if _, ok := memTotal(write("bad", "MemTotal: lots\n")); ok {
		t.Fatal("memTotal parsed garbage")
	}
	if n, ok := cgroupLimit(write("limit", "536870912\n")); !ok || n != 512<<20 {
		t.Fatalf("cgroupLimit = %d, %v", n, ok)
	}
	for _, c := range []string{"max\n", "9223372036854771712\n", ""} {
		if _, ok := cgroupLimit(write("nolimit", c)); ok {
			t.Fatalf("cgroupLimit(%q) is a limit", c)
		}
	}
	if _, ok := cgroupLimit(filepath.Join(dir, "absent")); ok {
		t.Fatal("an absent file is a limit")
	}
	if b := defaultMemoryBudget(); b < minMemoryBudget {
		t.Fatalf("defaultMemoryBudget() = %d", b)
	}
}
