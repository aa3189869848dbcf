package rl

import (
	"path/filepath"
	"sync"

	"github.com/rljob/rljob/trainer"
)

// The process keeps the light checkpoint it last wrote or replayed, in
// memory, so that a healthy run never replays: the next step's rollout
// borrows it (read-only) and the next train takes it over. Only light
// checkpoints are kept: a full state is read back from its files as
// before, so a run that resumes from one starts from the very bits an
// uninterrupted run starts from, whatever the files' dtype.
//
// One borrower at a time: a second one (an in-process shard of a test)
// loads its own copy.
var lightCache struct {
	sync.Mutex
	dir  string // absolute folder
	ck   *trainer.Checkpoint
	busy bool // lent to a stage call (until releaseModel)
}

// cacheKey is dir as the cache keys it.
func cacheKey(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// cacheBorrow returns the cached checkpoint of dir and lends it to the
// caller until releaseModel(ck.Model), or nil when the cache does not hold
// dir or has lent it already.
func cacheBorrow(dir string) *trainer.Checkpoint {
	lightCache.Lock()
	defer lightCache.Unlock()
	if lightCache.ck != nil && !lightCache.busy && lightCache.dir == cacheKey(dir) {
		lightCache.busy = true
		return lightCache.ck
	}
	return nil
}

// cachePut makes ck the cached checkpoint of dir, releasing the one it
// replaces; lend lends it to the caller at once. When the cache is lent,
// nothing changes and ok is false: ck stays the caller's.
func cachePut(dir string, ck *trainer.Checkpoint, lend bool) (ok bool) {
	lightCache.Lock()
	if lightCache.busy {
		lightCache.Unlock()
		return false
	}
	old := lightCache.ck
	lightCache.dir, lightCache.ck, lightCache.busy = cacheKey(dir), ck, lend
	lightCache.Unlock()
	if old != nil && old != ck {
		if old.Model != ck.Model {
			old.Model.Release()
		}
		if old.Opt != ck.Opt {
			old.Opt.Release()
		}
	}
	return true
}

// cacheRekey files the cached checkpoint of from under dir too (a copy of
// the folder: the same state).
func cacheRekey(from, dir string) {
	lightCache.Lock()
	defer lightCache.Unlock()
	if lightCache.ck != nil && lightCache.dir == cacheKey(from) {
		lightCache.dir = cacheKey(dir)
	}
}

// cacheDrop forgets the cached checkpoint without releasing it when it
// holds m: its model and moments are now the caller's.
func cacheDrop(m *trainer.Model) {
	lightCache.Lock()
	defer lightCache.Unlock()
	if lightCache.ck != nil && lightCache.ck.Model == m {
		lightCache.dir, lightCache.ck, lightCache.busy = "", nil, false
	}
}

// releaseModel releases m, or ends its loan when the cache holds it.
func releaseModel(m *trainer.Model) {
	lightCache.Lock()
	held := lightCache.ck != nil && lightCache.ck.Model == m
	if held {
		lightCache.busy = false
	}
	lightCache.Unlock()
	if !held {
		m.Release()
	}
}

// releaseOpt releases o unless the cache holds it.
func releaseOpt(o *trainer.AdamW) {
	lightCache.Lock()
	held := lightCache.ck != nil && lightCache.ck.Opt == o
	lightCache.Unlock()
	if !held {
		o.Release()
	}
}
