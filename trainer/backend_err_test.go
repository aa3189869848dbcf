package trainer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// failingBackend is the CPU backend with a device that fails in the
// kernel named on: from that call on, Err reports what a CUDA failure
// would (the kernel's name and CUDA's error string), as cudaBackend does.
type failingBackend struct {
	Backend
	on  string
	err error
}

func (f *failingBackend) Name() string { return "cuda: fake GPU, device 0" }
func (f *failingBackend) Err() error   { return f.err }

func (f *failingBackend) fail(kernel string) {
	if kernel == f.on && f.err == nil {
		f.err = fmt.Errorf("cuda: %s: an illegal memory access was encountered (code 700)", kernel)
	}
}

func (f *failingBackend) AttentionForward(out, lse, q, k, v []float32, valid []bool, B, T, NH, NKV, HS int) {
	f.fail("attention_forward")
	f.Backend.AttentionForward(out, lse, q, k, v, valid, B, T, NH, NKV, HS)
}

func (f *failingBackend) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse []float32, valid []bool, B, T, NH, NKV, HS int) {
	f.fail("attention_backward")
	f.Backend.AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid, B, T, NH, NKV, HS)
}

func (f *failingBackend) AttentionDecode(out, q []float32, caches []KVCache, lens []int32, NH int) {
	f.fail("attention_decode")
	f.Backend.AttentionDecode(out, q, caches, lens, NH)
}

func (f *failingBackend) Sample(tok []int32, logp, logits []float32, u []float64, ld, N, V int, temp float32, topK int, topP float64) {
	f.fail("sample")
	f.Backend.Sample(tok, logp, logits, u, ld, N, V, temp, topK, topP)
}

func (f *failingBackend) GradNorm(g []float32) float64 {
	f.fail("grad_norm")
	return f.Backend.GradNorm(g)
}

func (f *failingBackend) AdamWStep(params, grads []float32, o *AdamW, off int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) {
	f.fail("adamw_step")
	f.Backend.AdamWStep(params, grads, o, off, gradScale, cfg, t, zeroGrads)
}

// TestBackendErrorFailsStep: a device failure inside a kernel makes the
// forward, the backward, the sampler or the optimizer step that ran it
// return an error naming that step, the backend and the kernel with
// CUDA's message (no panic); an optimizer step on a failed backend
// changes no parameter.
func TestBackendErrorFailsStep(t *testing.T) {
	c := testConfig("qwen2", false)
	rng := rand.New(rand.NewPCG(5, 5))
	b := testBatch(rng, c.VocabSize, []int{7, 4}, 7)
	targets := NextTokenTargets(b, nil)
	sched := Schedule{Kind: "constant", LR: 1e-2}
	const gpu = "on cuda: fake GPU, device 0 failed: cuda: "
	const cudaMsg = ": an illegal memory access was encountered (code 700)"
	for _, tc := range []struct{ kernel, want string }{
		{"attention_forward", "trainer: forward " + gpu},
		{"attention_backward", "trainer: backward " + gpu},
		{"grad_norm", "trainer: gradient norm " + gpu},
		{"adamw_step", "trainer: optimizer step " + gpu},
	} {
		t.Run(tc.kernel, func(t *testing.T) {
			m := newTestModel(t, c, 9)
			fb := &failingBackend{Backend: cpu, on: tc.kernel}
			m.be = fb
			var err error
			if _, _, err = m.ForwardCE(b, targets); err == nil {
				if err = m.BackwardCE(1); err == nil {
					_, _, err = m.Step(DefaultAdamW(len(m.Params)), sched)
				}
			}
			if err == nil || err.Error() != tc.want+tc.kernel+cudaMsg {
				t.Fatalf("got error %v, want %q", err, tc.want+tc.kernel+cudaMsg)
			}
			// A later step on the failed backend updates nothing.
			before := slices.Clone(m.Params)
			opt := DefaultAdamW(len(m.Params))
			if _, _, err := m.Step(opt, sched); err == nil || !strings.Contains(err.Error(), tc.kernel) {
				t.Errorf("step after the failure: error %v, want one naming %s", err, tc.kernel)
			}
			if tc.kernel != "adamw_step" && (!bitsEqual(before, m.Params) || opt.Step != 0) {
				t.Errorf("a step on a failed backend changed the parameters or the optimizer state")
			}
		})
	}
	for _, kernel := range []string{"attention_decode", "sample"} {
		t.Run(kernel, func(t *testing.T) {
			sc := smpConfig("qwen2")
			m := smpModel(t, sc, 5, 8)
			m.be = &failingBackend{Backend: cpu, on: kernel}
			_, err := m.Generate(smpPrompts(2, 3, sc.VocabSize, 4), smpSeeds(3, 1), SampleOptions{Temperature: 1, MaxNewTokens: 1})
			if err == nil || !strings.Contains(err.Error(), gpu+kernel+cudaMsg) {
				t.Fatalf("got error %v, want one with %q", err, gpu+kernel+cudaMsg)
			}
		})
	}
}
