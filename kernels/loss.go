package kernels

import (
	"fmt"
	"math"
)

// Row-wise softmax family over (N, V) logits: log-probabilities of targets,
// cross-entropy, entropy, and the sampler's softmax. Parallel over rows; each
// row's sums run left to right with max subtraction, exp is expf (float32),
// and the exp-sums are accumulated in float64 (V can be 150k; this costs
// little next to the exp itself and keeps lse accurate).

// rowLSE returns log Σ exp(row/temp), computed as max + log Σ exp(z - max).
func rowLSE(row []float32, temp float32) float32 {
	inv := 1 / temp
	mx := float32(math.Inf(-1))
	for _, x := range row {
		mx = max(mx, x*inv)
	}
	var s float64
	for _, x := range row {
		s += float64(expf(x*inv - mx))
	}
	return mx + float32(math.Log(s))
}

func checkTemp(temp float32) {
	if !(temp > 0) {
		panic(fmt.Sprintf("kernels: temperature %v must be > 0", temp))
	}
}

func checkTarget(t int32, n, V int) {
	if int(t) >= V {
		panic(fmt.Sprintf("kernels: target %d at row %d out of range [0,%d)", t, n, V))
	}
}

func logprobsForward(logp, lse, logits []float32, targets []int32, N, V int, temp float32) {
	checkTemp(temp)
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : (n+1)*V]
			l := rowLSE(row, temp)
			lse[n] = l
			logp[n] = 0
			if t := targets[n]; t >= 0 {
				checkTarget(t, n, V)
				logp[n] = row[t]/temp - l
			}
		}
	})
}

func logprobsBackward(dlogits, dlogp, logits, lse []float32, targets []int32, N, V int, temp float32) {
	checkTemp(temp)
	inv := 1 / temp
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			t := targets[n]
			if t < 0 {
				continue
			}
			checkTarget(t, n, V)
			row := logits[n*V : (n+1)*V]
			d := dlogits[n*V : (n+1)*V]
			g := dlogp[n] * inv
			l := lse[n]
			for v, x := range row {
				p := expf(x*inv - l)
				d[v] -= g * p
			}
			d[t] += g
		}
	})
}

func crossEntropyForward(losses, lse, logits []float32, targets []int32, N, V int) (float32, int) {
	logprobsForward(losses, lse, logits, targets, N, V, 1)
	var sum float64
	count := 0
	for n := 0; n < N; n++ {
		losses[n] = -losses[n]
		if targets[n] >= 0 {
			sum += float64(losses[n])
			count++
		}
	}
	if count == 0 {
		return 0, 0
	}
	return float32(sum / float64(count)), count
}

func crossEntropyBackward(dlogits []float32, dloss float32, logits, lse []float32, targets []int32, N, V int) {
	count := 0
	for _, t := range targets[:N] {
		if t >= 0 {
			count++
		}
	}
	if count == 0 {
		return
	}
	g := -dloss / float32(count)
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			t := targets[n]
			if t < 0 {
				continue
			}
			checkTarget(t, n, V)
			row := logits[n*V : (n+1)*V]
			d := dlogits[n*V : (n+1)*V]
			l := lse[n]
			for v, x := range row {
				d[v] -= g * expf(x-l)
			}
			d[t] += g
		}
	})
}

func entropyForward(ent, lse, logits []float32, N, V int, temp float32) {
	checkTemp(temp)
	inv := 1 / temp
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : (n+1)*V]
			l := rowLSE(row, temp)
			lse[n] = l
			var pz float64 // Σ p·z
			for _, x := range row {
				z := x * inv
				pz += float64(expf(z-l) * z)
			}
			ent[n] = l - float32(pz)
		}
	})
}

func entropyBackward(dlogits, dent, logits, lse, ent []float32, N, V int, temp float32) {
	checkTemp(temp)
	inv := 1 / temp
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : (n+1)*V]
			d := dlogits[n*V : (n+1)*V]
			g := -dent[n] * inv
			l, h := lse[n], ent[n]
			for v, x := range row {
				lp := x*inv - l
				p := expf(lp)
				d[v] += g * p * (lp + h)
			}
		}
	})
}

func softmax(probs, logits []float32, N, V int, temp float32) {
	checkTemp(temp)
	inv := 1 / temp
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : (n+1)*V]
			o := probs[n*V : (n+1)*V]
			mx := float32(math.Inf(-1))
			for _, x := range row {
				mx = max(mx, x*inv)
			}
			var s float32
			for v, x := range row {
				e := expf(x*inv - mx)
				o[v] = e
				s += e
			}
			r := 1 / s
			for v := range o {
				o[v] *= r
			}
		}
	})
}

func logSoftmax(out, logits []float32, N, V int, temp float32) {
	checkTemp(temp)
	inv := 1 / temp
	parallelFor(N, rowGrain(V), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			row := logits[n*V : (n+1)*V]
			l := rowLSE(row, temp)
			o := out[n*V : (n+1)*V]
			for v, x := range row {
				o[v] = x*inv - l
			}
		}
	})
}

func argmax(row []float32) int {
	best := -1
	var bv float32
	for i, x := range row {
		if best < 0 || x > bv {
			best, bv = i, x
		}
	}
	return best
}
