package jobs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rljob/rljob/arrowio"
)

// RunLock is a held flock on a run's lock file. One runner per (lake, run)
// holds it; the kernel releases it when the process dies, so a SIGKILLed
// runner never leaves a stale lock behind (the file stays, unlocked).
type RunLock struct {
	f    *os.File
	path string
}

// LockPath is the lock file of a run (arrowio.RunLockPath):
// <lake>/_locks/run=<R>.lock, or run=<R>.shard=<i>-of-<n>.lock for a shard.
func LockPath(lakeRoot, run string, shard, numShards int) string {
	return arrowio.RunLockPath(lakeRoot, run, shard, numShards)
}

// AcquireRunLock takes the exclusive, non-blocking flock on path and writes
// "pid=<pid> host=<host> started=<RFC3339>" into the file. When another
// process holds it, it returns a *LockError naming the holder (read from the
// file) and changes nothing: the file is opened without truncation, and
// rewritten only once the lock is ours.
func AcquireRunLock(path, run string) (*RunLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
			return nil, &LockError{Lock: path, Run: run, Holder: string(holder)}
		}
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid=%d host=%s started=%s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(info), 0)
	}
	return &RunLock{f: f, path: path}, nil
}

// Release unlocks and closes the lock file. The file itself stays (removing
// it would race with a runner that just opened it).
func (l *RunLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
