package reactor

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// minMemoryBudget is the smallest MemoryBudget: what a few answers need.
const minMemoryBudget = 1 << 20

// fallbackMemory is the machine's memory assumed where it cannot be read.
const fallbackMemory = 4 << 30

// defaultMemoryBudget is a quarter of the memory the process may use: the
// machine's (MemTotal of /proc/meminfo), or its cgroup's limit (v2
// memory.max, v1 memory.limit_in_bytes) when that is lower; 1 GiB where
// neither can be read.
func defaultMemoryBudget() int64 {
	return max(machineMemory()/4, minMemoryBudget)
}

// machineMemory returns the memory the process may use, in bytes.
func machineMemory() int64 {
	total := int64(fallbackMemory)
	if t, ok := memTotal("/proc/meminfo"); ok {
		total = t
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if l, ok := cgroupLimit(f); ok && l < total {
			total = l
		}
	}
	return total
}

// memTotal reads MemTotal from a meminfo file.
func memTotal(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil || kb <= 0 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}

// cgroupLimit reads a cgroup memory limit file; "max" (no limit) and
// absurd values are no limit.
func cgroupLimit(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 || v >= 1<<60 {
		return 0, false
	}
	return v, true
}
