package rl

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/rljob/rljob/jobs"
)

// logMemory logs, at debug level, where a stage's memory stands at point
// what: the process's resident set (VmRSS) and its peak so far (VmHWM),
// and the Go heap's live bytes and what it holds from the OS. It is how
// docs/memory.md's accounting of a step was measured (--log-level debug).
func logMemory(sc *jobs.StageCtx, what string) {
	ev := sc.Log.Debug()
	if !ev.Enabled() {
		return
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := procMemory()
	ev.Str("rss", jobs.FormatBytes(float64(rss))).Str("peak_rss", jobs.FormatBytes(float64(hwm))).
		Str("heap_live", jobs.FormatBytes(float64(ms.HeapAlloc))).
		Str("heap_held", jobs.FormatBytes(float64(ms.HeapSys-ms.HeapReleased))).
		Msgf("%s: memory %s", sc.Stage, what)
}

// procMemory is /proc/self/status's VmRSS and VmHWM in bytes (0 where
// unreadable).
func procMemory() (rss, hwm uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm
}
