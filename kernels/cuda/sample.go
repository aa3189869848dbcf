//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import "fmt"

// SampleParams are trainer.SampleOptions' sampling fields as the sampler
// holds them: Temp is float32(Temperature) (0 = greedy), TopK 0 keeps all,
// TopP 0 or 1 keeps all.
type SampleParams struct {
	Temp float32
	TopK int
	TopP float64
}

// Sample picks one token per row of logits (N rows, ld floats apart, the
// first V ids sampleable) exactly as trainer/sample.go's pick does, and
// writes tok (N, I32) and logp (N, F32: LogProbRow of the token). u (N) are
// the rows' uniform draws, rng.Float64() of each sequence's PCG stream
// (unused when greedy): with the same u, the GPU takes the CPU's token.
func (d *Device) Sample(tok, logp, logits *Buf, ld, N, V int, u []float64, p SampleParams) error {
	const k = "sample"
	if N <= 0 || V <= 0 || ld < V || p.Temp < 0 || p.TopK < 0 || p.TopP < 0 || p.TopP > 1 {
		return fmt.Errorf("cuda: %s: N=%d V=%d ld=%d temperature %v top-k %d top-p %v", k, N, V, ld, p.Temp, p.TopK, p.TopP)
	}
	if err := check(k, i32("tok", tok, N), f32("logp", logp, N), f32("logits", logits, (N-1)*ld+V)); err != nil {
		return err
	}
	topP := p.TopP
	if topP == 0 {
		topP = 1
	}
	var inv float32
	if p.Temp > 0 {
		inv = 1 / p.Temp
		if len(u) < N {
			return fmt.Errorf("cuda: %s: %d draws for %d rows", k, len(u), N)
		}
	}
	ub, err := d.Scratch("sample u", F64, N)
	if err != nil {
		return err
	}
	if p.Temp > 0 {
		if err := d.UploadF64(ub, u[:N]); err != nil {
			return err
		}
	}
	var bytes C.ulonglong
	if err := cerr(k+" workspace size", C.rj_sample_ws_bytes(C.int(N), C.int(V), &bytes)); err != nil {
		return err
	}
	ws, err := d.Scratch("sample workspace", U8, int(bytes))
	if err != nil {
		return err
	}
	return cerr(k, C.rj_sample(tok.p(), logp.p(), logits.p(), C.int(ld), C.int(N), C.int(V), C.float(p.Temp), C.float(inv),
		C.int(p.TopK), C.double(topP), ub.p(), ws.p(), bytes))
}
