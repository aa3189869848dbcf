package trainer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// trainDigest trains a fresh qwen2-style model (biases, GQA, sequences
// long enough for attention's matrix-product backward) for 3 SFT and 3 RL
// steps and returns the sha256 of its parameters and AdamW moments.
func trainDigest(t *testing.T, dtype string) string {
	t.Helper()
	c := Config{ModelType: "qwen2", HiddenSize: 48, IntermediateSize: 88, NumLayers: 2,
		NumHeads: 6, NumKVHeads: 2, VocabSize: 37, MaxPositionEmbeddings: 64,
		RMSNormEps: 1e-6, RopeTheta: 10000, QKVBias: true}
	m := newTestModel(t, c, 4)
	if err := m.SetDType(dtype); err != nil {
		t.Fatal(err)
	}
	o := DefaultAdamW(len(m.Params))
	s := Schedule{Kind: "cosine", LR: 3e-3, Warmup: 2, Total: 6}
	rng := rand.New(rand.NewPCG(3, 3))
	for step := range 6 {
		b := testBatch(rng, c.VocabSize, []int{40, 23, 33}, 40)
		targets := NextTokenTargets(b, []int{5, 3, 9})
		if step < 3 {
			sftStep(t, m, o, s, b, targets)
		} else {
			rlStep(t, m, o, s, b, targets, []float32{1, -0.7, 0.3})
		}
	}
	h := sha256.New()
	for _, x := range [][]float32{m.Params, o.M, o.V} {
		_ = binary.Write(h, binary.LittleEndian, x)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goldenTrainDigest is trainDigest on every kernel set of every x86-64
// machine, with cgo and without (make test runs this package under
// CGO_ENABLED=0 too). It changes only when the trainer's or the kernels'
// arithmetic does: then every number of the README changes with it.
const goldenTrainDigest = "3cf34bb9588178344ede99ba98a3a390d8f0baddea68472735758278fbb6f550"

// TestTrainBytesAcrossKernelSets: training gives the same bytes on every
// kernel set this machine can run, and those of the golden digest.
func TestTrainBytesAcrossKernelSets(t *testing.T) {
	sets := kernels.KernelSets()
	defer func() { _ = kernels.UseKernelSet(sets[len(sets)-1]) }()
	for _, set := range sets {
		if err := kernels.UseKernelSet(set); err != nil {
			t.Fatal(err)
		}
		got := trainDigest(t, DTypeFP32)
		t.Logf("%s: %s", set, got)
		if got != goldenTrainDigest {
			t.Errorf("kernel set %s: parameters and moments after 6 steps hash to %s, want %s", set, got, goldenTrainDigest)
		}
	}
}

// goldenTrainDigestBF16 is trainDigest in bf16 (bf16.go), the same on
// every kernel set (VDPBF16PS, its AVX-512 and AVX2 FMA twins, Go).
const goldenTrainDigestBF16 = "80d9f327f7e26d6f0209f1c4df481299bea9b3c5775efe7750e4a72f7b2db2ad"

// TestTrainBytesAcrossKernelSetsBF16: bf16 training gives the same bytes
// on every kernel set this machine can run, and those of the golden digest.
func TestTrainBytesAcrossKernelSetsBF16(t *testing.T) {
	sets := kernels.KernelSets()
	defer func() { _ = kernels.UseKernelSet(sets[len(sets)-1]); _ = kernels.UseBF16Dot("") }()
	for _, set := range sets {
		if err := kernels.UseKernelSet(set); err != nil {
			t.Fatal(err)
		}
		dots := []string{""}
		if set == "avx512" {
			dots = kernels.BF16Dots() // VDPBF16PS and its FMA twin, whichever start-up chose
		}
		for _, dot := range dots {
			if err := kernels.UseBF16Dot(dot); err != nil {
				t.Fatal(err)
			}
			got := trainDigest(t, DTypeBF16)
			t.Logf("%s (bf16 on %s): %s", set, kernels.BF16Dot(), got)
			if got != goldenTrainDigestBF16 {
				t.Errorf("kernel set %s, bf16 on %s: bf16 parameters and moments after 6 steps hash to %s, want %s", set, kernels.BF16Dot(), got, goldenTrainDigestBF16)
			}
		}
	}
}
