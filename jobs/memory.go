package jobs

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryBudget is how many bytes a stage may plan to allocate: the smallest
// of the Go runtime's soft limit (GOMEMLIMIT, when set), the cgroup v2
// limit less its current use (a Slurm job or a container), and the kernel's
// MemAvailable. It returns 0 when none of these can be read (then stages do
// not refuse on memory).
func MemoryBudget() uint64 {
	var budget uint64
	take := func(b uint64) {
		if b > 0 && (budget == 0 || b < budget) {
			budget = b
		}
	}
	if lim := debug.SetMemoryLimit(-1); lim > 0 && lim < math.MaxInt64 {
		take(uint64(lim))
	}
	if max, ok := readUint("/sys/fs/cgroup/memory.max"); ok {
		cur, _ := readUint("/sys/fs/cgroup/memory.current")
		if max > cur {
			take(max - cur)
		}
	}
	if avail, ok := memAvailable(); ok {
		take(avail)
	}
	return budget
}

// readUint reads a file holding one decimal number ("max" is not one).
func readUint(p string) (uint64, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// memAvailable is /proc/meminfo's MemAvailable in bytes.
func memAvailable() (uint64, bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		return kb * 1024, err == nil
	}
	return 0, false
}

// CheckMemory refuses, before a stage allocates, work whose estimated size
// need (bytes) is over MemoryBudget: a *UsageError at pos that says what
// was estimated (what, e.g. "n := 1000000000 samples × 32 prompts = ..."),
// the estimate, the budget and how to shrink the work (hint). A budget that
// cannot be read refuses only estimates over 1 PiB, which no machine holds.
func CheckMemory(pos Pos, stage, what string, need float64, hint string) error {
	budget := float64(MemoryBudget())
	if budget == 0 {
		budget = 1 << 50
	}
	if need <= budget {
		return nil
	}
	return &UsageError{
		Pos:  pos,
		Msg:  fmt.Sprintf("%s: %s need about %s of memory, more than the %s available", stage, what, FormatBytes(need), FormatBytes(budget)),
		Hint: hint,
	}
}

// FormatBytes renders a byte count with a binary unit: "1.5 GiB".
func FormatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
