package trainer

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// keepingBackend is the CPU backend with the CUDA backend's way of holding
// the optimizer's moments (cuda_backend_decode.go): AdamWStep steps its
// own copy of them, made from o.M and o.V at the first step, and records
// itself with o.keptBy; FetchMoments copies them back. It also writes NaN
// into the host moments it leaves stale, so that any host read that skips
// SyncMoments shows in the results.
type keepingBackend struct {
	Backend
	kept           map[*AdamW][2][]float32
	fetches, drops int
}

func newKeepingBackend() *keepingBackend {
	return &keepingBackend{Backend: cpu, kept: map[*AdamW][2][]float32{}}
}

func (k *keepingBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	c, ok := k.kept[o]
	if !ok {
		c = [2][]float32{slices.Clone(o.M), slices.Clone(o.V)}
		k.kept[o] = c
	}
	e := off + len(params)
	kernels.AdamWStep(params, c[0][off:e], c[1][off:e], grads, gradScale, cfg, t, zeroGrads)
	for _, x := range [][]float32{o.M[off:e], o.V[off:e]} {
		for i := range x {
			x[i] = float32(math.NaN())
		}
	}
	o.keptBy(k)
}

func (k *keepingBackend) FetchMoments(o *AdamW) {
	c := k.kept[o]
	copy(o.M, c[0])
	copy(o.V, c[1])
	k.fetches++
}

func (k *keepingBackend) DropMoments(o *AdamW) {
	delete(k.kept, o)
	k.drops++
}

// TestMomentsKeptByBackend: with a backend that keeps the moments between
// steps (as the CUDA backend does on the GPU), three steps, a checkpoint,
// two more steps and another checkpoint give the CPU's bytes: the
// checkpoint fetches the moments (SyncMoments) and the steps after it go
// on from the backend's copy. Moving the optimizer to another backend
// fetches and drops them, and Release drops them.
func TestMomentsKeptByBackend(t *testing.T) {
	c := testConfig("qwen2", false)
	rng := rand.New(rand.NewPCG(6, 6))
	b := testBatch(rng, c.VocabSize, []int{7, 4}, 7)
	targets := NextTokenTargets(b, nil)
	kb := newKeepingBackend()
	files := [2][]map[string][]byte{}
	var opts [2]*AdamW
	for i, be := range []Backend{cpu, kb} {
		m := newTestModel(t, c, 9)
		m.be = be
		_, p, _ := m.Trainable()
		o := DefaultAdamW(len(p))
		opts[i] = o
		for step := 1; step <= 5; step++ {
			if _, _, err := m.ForwardCE(b, targets); err != nil {
				t.Fatal(err)
			}
			if err := m.BackwardCE(1); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Step(o, Schedule{Kind: "constant", LR: 1e-2}); err != nil {
				t.Fatal(err)
			}
			if step != 3 && step != 5 {
				continue
			}
			if be == kb && !math.IsNaN(float64(o.M[0])) {
				t.Fatalf("step %d: the host moments are not poisoned: the check below could not fail", step)
			}
			dir := t.TempDir()
			if err := SaveCheckpoint(dir, &Checkpoint{Model: m, Opt: o, State: &TrainerState{Step: o.Step}}); err != nil {
				t.Fatal(err)
			}
			files[i] = append(files[i], readDir(t, dir))
		}
	}
	if len(files[0]) != 2 || len(files[1]) != 2 {
		t.Fatalf("%d and %d checkpoints, want 2 each", len(files[0]), len(files[1]))
	}
	for j := range files[0] {
		if len(files[1][j]) != len(files[0][j]) {
			t.Errorf("checkpoint %d: %d files, want %d", j+1, len(files[1][j]), len(files[0][j]))
		}
		for name, want := range files[0][j] {
			if !bytes.Equal(files[1][j][name], want) {
				t.Errorf("checkpoint %d: %s differs when the backend keeps the moments", j+1, name)
			}
		}
	}
	if kb.fetches != 2 || len(kb.kept) != 1 {
		t.Errorf("%d fetches (want 2, one per checkpoint), %d optimizers kept (want 1)", kb.fetches, len(kb.kept))
	}

	// Another backend's step fetches and drops; Release drops.
	o := opts[1]
	o.M[0] = float32(math.NaN()) // stale again, as after a step
	o.stale = true
	if err := o.moveTo(cpu); err != nil {
		t.Fatal(err)
	}
	if kb.drops != 1 || o.keeper != nil || o.stale || math.IsNaN(float64(o.M[0])) {
		t.Errorf("moveTo: drops %d, keeper %v, stale %v, M[0] %v", kb.drops, o.keeper, o.stale, o.M[0])
	}
	o.keptBy(kb)
	o.Release()
	if kb.drops != 2 || o.keeper != nil {
		t.Errorf("Release: drops %d (want 2), keeper %v", kb.drops, o.keeper)
	}
}

// readDir returns the files of dir by name, but the commit marker.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}
