package jobs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	// shared is the run's lock file held shared by a shard runner (nil
	// otherwise): see AcquireRunnerLock.
	shared *os.File
}

// AcquireRunnerLock takes the locks of a runner of run in the lake at root.
// An unsharded runner (numShards <= 1), and every other writer of the run
// (drop-step), holds the run's lock file exclusively. Shard i of n holds
// its own shard lock file exclusively and the run's lock file shared, so
// the shards of a job array run side by side while a runner of the same
// run without --shard (or drop-step) is refused, and the other way round:
// a *LockError (exit 4), the lake untouched.
func AcquireRunnerLock(root, run string, shard, numShards int) (*RunLock, error) {
	runPath := LockPath(root, run, 0, 1)
	if numShards <= 1 {
		l, err := AcquireRunLock(runPath, run)
		var le *LockError
		if errors.As(err, &le) {
			if hs := shardHolders(root, run); hs != "" {
				le.Holder, le.Hint = hs, shardHint
			}
		}
		return l, err
	}
	shared, err := openLockFile(runPath)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(shared.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(shared, 4096))
		shared.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
			return nil, &LockError{Lock: runPath, Run: run, Holder: "a runner without --shard, or a drop-step: " + string(holder), Hint: shardHint}
		}
		return nil, fmt.Errorf("jobs: lock %s: %w", runPath, err)
	}
	l, err := AcquireRunLock(LockPath(root, run, shard, numShards), run)
	if err != nil {
		shared.Close()
		return nil, err
	}
	l.shared = shared
	return l, nil
}

const shardHint = "a step is written either by one runner or by the shards of one job array (--shard i/n), never both: wait for the others to finish"

// shardHolders names the shard runners holding run's shard lock files
// ("" when none is held).
func shardHolders(root, run string) string {
	ms, _ := filepath.Glob(filepath.Join(root, arrowio.LocksDir, arrowio.KeyRun+"="+run+".shard=*.lock"))
	var hs []string
	for _, m := range ms {
		f, err := os.Open(m)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil { // held
			b, _ := io.ReadAll(io.LimitReader(f, 4096))
			hs = append(hs, filepath.Base(m)+" "+strings.TrimSpace(string(b)))
		}
		f.Close()
	}
	if len(hs) == 0 {
		return ""
	}
	return "shard runners: " + strings.Join(hs, "; ")
}

func openLockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("jobs: lock %s: %w", path, err)
	}
	return f, nil
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
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
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
	if l.shared != nil {
		l.shared.Close() // drops the shared flock
		l.shared = nil
	}
	return err
}
