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
var lightCache struct {
	sync.Mutex
	dir string // absolute folder
	ck  *trainer.Checkpoint
}

// cacheKey is dir as the cache keys it.
func cacheKey(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return filepath.Clean(dir)
}

// cacheGet returns the cached checkpoint of dir, or nil; it stays the
// cache's (see takeOver).
func cacheGet(dir string) *trainer.Checkpoint {
	lightCache.Lock()
	defer lightCache.Unlock()
	if lightCache.ck != nil && lightCache.dir == cacheKey(dir) {
		return lightCache.ck
	}
	return nil
}

// cachePut makes ck the cached checkpoint of dir, releasing the one it
// replaces.
func cachePut(dir string, ck *trainer.Checkpoint) {
	lightCache.Lock()
	old := lightCache.ck
	lightCache.dir, lightCache.ck = cacheKey(dir), ck
	lightCache.Unlock()
	if old != nil && old != ck {
		if old.Model != ck.Model {
			old.Model.Release()
		}
		if old.Opt != ck.Opt {
			old.Opt.Release()
		}
	}
}

// cacheDrop forgets the cached checkpoint without releasing it when it
// holds m: its model and moments are now the caller's.
func cacheDrop(m *trainer.Model) {
	lightCache.Lock()
	defer lightCache.Unlock()
	if lightCache.ck != nil && lightCache.ck.Model == m {
		lightCache.dir, lightCache.ck = "", nil
	}
}

// cacheHolds reports whether the cache holds m or o.
func cacheHolds(m *trainer.Model, o *trainer.AdamW) bool {
	lightCache.Lock()
	defer lightCache.Unlock()
	ck := lightCache.ck
	return ck != nil && (m != nil && ck.Model == m || o != nil && ck.Opt == o)
}

// releaseModel releases m unless the cache holds it.
func releaseModel(m *trainer.Model) {
	if !cacheHolds(m, nil) {
		m.Release()
	}
}

// releaseOpt releases o unless the cache holds it.
func releaseOpt(o *trainer.AdamW) {
	if !cacheHolds(nil, o) {
		o.Release()
	}
}
