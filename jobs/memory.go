package jobs

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
)

// memoryFlag is rljob run --memory (0: not given).
var memoryFlag atomic.Uint64

// SetMemoryBudget sets the budget every stage of this process plans
// against (rljob run --memory); 0 goes back to the machine's.
func SetMemoryBudget(bytes uint64) { memoryFlag.Store(bytes) }

// safeShare is the part of the machine's available memory a training
// stage plans to fill when no --memory is given: the rest is for the Go
// runtime's overhead, DuckDB and whatever else runs on the machine.
const safeShare = 0.75

// TrainBudget is the bytes a training stage sizes its micro-batches for:
// --memory when given, else safeShare of MemoryBudget (0 when unknown).
func TrainBudget() uint64 {
	if b := memoryFlag.Load(); b > 0 {
		return b
	}
	return uint64(float64(MemoryBudget()) * safeShare)
}

// MemoryBudget is how many bytes a stage may plan to allocate: --memory
// when given (SetMemoryBudget), else the smallest of the Go runtime's soft
// limit (GOMEMLIMIT, when set), the cgroup v2 limit less its current use (a
// Slurm job or a container), and the kernel's MemAvailable. It returns 0
// when none of these can be read (then stages do not refuse on memory).
func MemoryBudget() uint64 {
	if b := memoryFlag.Load(); b > 0 {
		return b
	}
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

// ParseBytes reads a size such as "16GiB", "512MiB", "16G", "1.5GB" or a
// plain byte count. K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/
// GB/TB powers of 1000.
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KIB": 1 << 10, "KB": 1e3, "M": 1 << 20, "MIB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GIB": 1 << 30, "GB": 1e9, "T": 1 << 40, "TIB": 1 << 40, "TB": 1e12}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || !(v > 0) || math.IsInf(v*mult, 0) {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit, e.g. 16GiB, 512MiB, 8G", s)
	}
	return uint64(v * mult), nil
}
