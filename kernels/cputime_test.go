//go:build unix

package kernels

import "syscall"

// cpuSeconds returns the CPU time (user + system) this process has used.
// Benchmarks divide work by it as well as by wall time: on a machine shared
// with other jobs, work per CPU-second is the stable figure.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
