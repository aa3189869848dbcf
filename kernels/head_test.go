package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestHeadFused: the fused loss head equals the kernels' reference ops:
// lse and logp bit for bit, entropy, cross-entropy and every gradient to
// |got−ref| ≤ 1e-5 + 1e-4·|ref|.
func TestHeadFused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		N, V    int
		temp    float32
		entropy bool
	}{
		{"logp t=1", 5, 7, 1, false},
		{"logp+ent t=0.7", 6, 300, 0.7, true},
		{"logp+ent t=1.3 wide", 3, 5000, 1.3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 3))
			N, V := tc.N, tc.V
			logits := make([]float32, N*V)
			for i := range logits {
				logits[i] = float32(3 * rng.NormFloat64())
			}
			targets := make([]int32, N)
			dlogp, dent := make([]float32, N), make([]float32, N)
			for n := range targets {
				targets[n] = int32(rng.IntN(V))
				if n%3 == 1 {
					targets[n] = -1
				}
				dlogp[n], dent[n] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			f := func(n int) []float32 { return make([]float32, n) }
			// reference
			lseR, lpR, entR, lse2R := f(N), f(N), f(N), f(N)
			LogProbsForward(lpR, lseR, logits, targets, N, V, tc.temp)
			EntropyForward(entR, lse2R, logits, N, V, tc.temp)
			dR := f(N * V)
			LogProbsBackward(dR, dlogp, logits, lseR, targets, N, V, tc.temp)
			var dentArg []float32
			if tc.entropy {
				dentArg = dent
				EntropyBackward(dR, dent, logits, lse2R, entR, N, V, tc.temp)
			}
			// fused
			e, r, lse, lp, ent := f(N*V), f(N), f(N), f(N), f(N)
			var entArg []float32
			if tc.entropy {
				entArg = ent
			}
			headFwd(e, r, lse, lp, entArg, nil, logits, targets, N, V, V, tc.temp)
			for n := range N {
				if math.Float32bits(lse[n]) != math.Float32bits(lseR[n]) || math.Float32bits(lp[n]) != math.Float32bits(lpR[n]) {
					t.Errorf("row %d: lse %v logp %v, reference %v %v", n, lse[n], lp[n], lseR[n], lpR[n])
				}
				// the sampler's logprob of the row's target: same bits
				if tg := targets[n]; tg >= 0 {
					if got := logProbRow(logits[n*V:(n+1)*V], tg, tc.temp); math.Float32bits(got) != math.Float32bits(lp[n]) {
						t.Errorf("row %d: LogProbRow %v, head %v", n, got, lp[n])
					}
				}
			}
			if tc.entropy {
				assertClose(t, "ent", ent, entR, 1e-5, 1e-4)
			}
			headBwdLogp(e, r, dlogp, dentArg, logits, lse, ent, targets, N, V, V, tc.temp)
			assertClose(t, "dlogits", e, dR, 1e-5, 1e-4)

			// cross-entropy at temperature 1
			losses, lseC := f(N), f(N)
			meanR, count := CrossEntropyForward(losses, lseC, logits, targets, N, V)
			dC := f(N * V)
			CrossEntropyBackward(dC, 0.7, logits, lseC, targets, N, V)
			headFwd(e, r, lse, lp, nil, nil, logits, targets, N, V, V, 1)
			var sum float64
			for n := range N {
				if targets[n] >= 0 {
					sum += float64(-lp[n])
				}
			}
			if mean := float32(sum / float64(count)); mean != meanR {
				t.Errorf("CE mean %v, reference %v", mean, meanR)
			}
			headBwdCE(e, r, 0.7, targets, count, N, V)
			assertClose(t, "dlogits CE", e, dC, 1e-5, 1e-4)
		})
	}
}
