//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import (
	"fmt"
	"math"
	"strings"

	"github.com/rljob/rljob/kernels"
)

// Each method below launches the kernel of csrc/<family>.cu that mirrors
// the package kernels function of the same name; shapes and semantics are
// kernels/api.go's. Arguments are checked first (an error names the kernel
// and the buffer), then the launch error, if any, is returned with the
// kernel's name and CUDA's error string.

// arg is one buffer argument to check: its name in the error, the buffer,
// its type and how many elements the call reads or writes.
type arg struct {
	name     string
	b        *Buf
	dt       DType
	n        int
	optional bool
}

func check(kernel string, args ...arg) error {
	var bad []string
	for _, a := range args {
		switch {
		case a.b == nil && a.optional:
		case a.b == nil:
			bad = append(bad, a.name+" is nil")
		case a.b.DType != a.dt:
			bad = append(bad, fmt.Sprintf("%s (%s) is %s, want %s", a.name, a.b.Name, a.b.DType, a.dt))
		case a.b.N < a.n:
			bad = append(bad, fmt.Sprintf("%s (%s) has %d elements, need %d", a.name, a.b.Name, a.b.N, a.n))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cuda: %s: %s", kernel, strings.Join(bad, "; "))
	}
	return nil
}

func f32(name string, b *Buf, n int) arg { return arg{name: name, b: b, dt: F32, n: n} }
func opt32(name string, b *Buf, n int) arg {
	return arg{name: name, b: b, dt: F32, n: n, optional: true}
}
func i32(name string, b *Buf, n int) arg { return arg{name: name, b: b, dt: I32, n: n} }

// EmbeddingForward: out (N, C) = wte[tokens[n]] for wte (V, C). A token
// outside [0, V) is reported by the next Sync (its row is zeroed).
func (d *Device) EmbeddingForward(out, wte, tokens *Buf, N, C, V int) error {
	const k = "embedding_forward"
	if err := check(k, f32("out", out, N*C), f32("wte", wte, V*C), i32("tokens", tokens, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_embedding_fwd(out.p(), wte.p(), tokens.p(), C.int(N), C.int(C), C.int(V)))
}

// EmbeddingBackward: dwte[tokens[n]] += dout[n], rows in order n = 0..N-1.
func (d *Device) EmbeddingBackward(dwte, dout, tokens *Buf, N, C, V int) error {
	const k = "embedding_backward"
	if err := check(k, f32("dwte", dwte, V*C), f32("dout", dout, N*C), i32("tokens", tokens, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_embedding_bwd(dwte.p(), dout.p(), tokens.p(), C.int(N), C.int(C), C.int(V)))
}

// RMSNormForward is kernels.RMSNormForward.
func (d *Device) RMSNormForward(out, rstd, inp, weight *Buf, N, C int, eps float32) error {
	const k = "rmsnorm_forward"
	if err := check(k, f32("out", out, N*C), f32("rstd", rstd, N), f32("inp", inp, N*C), f32("weight", weight, C)); err != nil {
		return err
	}
	return cerr(k, C.rj_rmsnorm_fwd(out.p(), rstd.p(), inp.p(), weight.p(), C.int(N), C.int(C), C.float(eps)))
}

// RMSNormBackward is kernels.RMSNormBackward (dweight may be nil).
func (d *Device) RMSNormBackward(dinp, dweight, dout, inp, weight, rstd *Buf, N, C int) error {
	const k = "rmsnorm_backward"
	if err := check(k, f32("dinp", dinp, N*C), opt32("dweight", dweight, C), f32("dout", dout, N*C),
		f32("inp", inp, N*C), f32("weight", weight, C), f32("rstd", rstd, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_rmsnorm_bwd(dinp.p(), dweight.p(), dout.p(), inp.p(), weight.p(), rstd.p(), C.int(N), C.int(C)))
}

// RopeTable holds cos and sin of pos·inv_freq[i] for pos < MaxPos,
// computed on the host exactly as package kernels computes them (float32
// inv_freq from math.Pow, float32 angle, math.Sincos rounded to float32),
// interleaved (MaxPos, HS/2, 2) on the device.
type RopeTable struct {
	MaxPos, HS int
	Theta      float32
	buf        *Buf
}

// NewRopeTable builds the table for positions [0, maxPos) and head size HS.
func (d *Device) NewRopeTable(maxPos, HS int, theta float32) (*RopeTable, error) {
	if HS%2 != 0 || HS <= 0 || maxPos <= 0 {
		return nil, fmt.Errorf("cuda: rope table: head size %d must be even and > 0, positions %d > 0", HS, maxPos)
	}
	half := HS / 2
	host := make([]float32, maxPos*half*2)
	inv := make([]float32, half)
	for i := range inv {
		inv[i] = 1 / float32(math.Pow(float64(theta), float64(float32(2*i)/float32(HS))))
	}
	for p := range maxPos {
		fp := float32(p)
		for i, f := range inv {
			s, c := math.Sincos(float64(fp * f))
			host[(p*half+i)*2], host[(p*half+i)*2+1] = float32(c), float32(s)
		}
	}
	b, err := d.Alloc("rope table", F32, len(host))
	if err != nil {
		return nil, err
	}
	if err := d.Upload(b, host); err != nil {
		b.Free()
		return nil, err
	}
	return &RopeTable{MaxPos: maxPos, HS: HS, Theta: theta, buf: b}, nil
}

// Free releases the table.
func (t *RopeTable) Free() { t.buf.Free() }

// RopeForward is kernels.RopeForward with the table's theta (out may alias
// inp). A position outside the table is reported by the next Sync.
func (d *Device) RopeForward(out, inp, pos *Buf, N, NH, HS int, tab *RopeTable) error {
	return d.rope("rope_forward", out, inp, pos, N, NH, HS, tab, false)
}

// RopeBackward is kernels.RopeBackward (dinp += Rᵀ·dout).
func (d *Device) RopeBackward(dinp, dout, pos *Buf, N, NH, HS int, tab *RopeTable) error {
	return d.rope("rope_backward", dinp, dout, pos, N, NH, HS, tab, true)
}

func (d *Device) rope(k string, out, inp, pos *Buf, N, NH, HS int, tab *RopeTable, bwd bool) error {
	if tab == nil || tab.HS != HS {
		return fmt.Errorf("cuda: %s: rope table for head size %d needed", k, HS)
	}
	if err := check(k, f32("out", out, N*NH*HS), f32("inp", inp, N*NH*HS), i32("pos", pos, N)); err != nil {
		return err
	}
	mp, n, nh, hs := C.int(tab.MaxPos), C.int(N), C.int(NH), C.int(HS)
	if bwd {
		return cerr(k, C.rj_rope_bwd(out.p(), inp.p(), pos.p(), tab.buf.p(), mp, n, nh, hs))
	}
	return cerr(k, C.rj_rope_fwd(out.p(), inp.p(), pos.p(), tab.buf.p(), mp, n, nh, hs))
}

// SwiGLUForward is kernels.SwiGLUForward over N elements.
func (d *Device) SwiGLUForward(out, gate, up *Buf, N int) error {
	const k = "swiglu_forward"
	if err := check(k, f32("out", out, N), f32("gate", gate, N), f32("up", up, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_swiglu_fwd(out.p(), gate.p(), up.p(), C.longlong(N)))
}

// SwiGLUBackward is kernels.SwiGLUBackward.
func (d *Device) SwiGLUBackward(dgate, dup, dout, gate, up *Buf, N int) error {
	const k = "swiglu_backward"
	if err := check(k, f32("dgate", dgate, N), f32("dup", dup, N), f32("dout", dout, N), f32("gate", gate, N), f32("up", up, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_swiglu_bwd(dgate.p(), dup.p(), dout.p(), gate.p(), up.p(), C.longlong(N)))
}

// ResidualForward: out = a + b.
func (d *Device) ResidualForward(out, a, b *Buf, N int) error {
	const k = "residual_forward"
	if err := check(k, f32("out", out, N), f32("a", a, N), f32("b", b, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_residual_fwd(out.p(), a.p(), b.p(), C.longlong(N)))
}

// ScaleAdd: out = out + s·x with add, else out = s·x; the product is
// rounded to float32 before the add (Go's out[i] += float32(s*x[i])).
func (d *Device) ScaleAdd(out, x *Buf, s float32, N int, add bool) error {
	const k = "scale_add"
	if err := check(k, f32("out", out, N), f32("x", x, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_scale_add(out.p(), x.p(), C.float(s), C.longlong(N), cbool(add)))
}

// ResidualBackward: da += dout, db += dout (either may be nil).
func (d *Device) ResidualBackward(da, db, dout *Buf, N int) error {
	const k = "residual_backward"
	if err := check(k, opt32("da", da, N), opt32("db", db, N), f32("dout", dout, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_residual_bwd(da.p(), db.p(), dout.p(), C.longlong(N)))
}

// AdamWStep is kernels.AdamWStep over n elements, with the step-size
// constants computed on the host as package kernels computes them.
func (d *Device) AdamWStep(params, m, v, grads *Buf, n int, gradScale float32, cfg kernels.AdamWConfig, t int, zeroGrads bool) error {
	const k = "adamw_step"
	if err := check(k, f32("params", params, n), f32("m", m, n), f32("v", v, n), f32("grads", grads, n)); err != nil {
		return err
	}
	bc1 := 1 - math.Pow(float64(cfg.Beta1), float64(t))
	bc2 := 1 - math.Pow(float64(cfg.Beta2), float64(t))
	stepSize := float32(float64(cfg.LR) / bc1)
	invBc2 := float32(1 / math.Sqrt(bc2))
	decay := 1 - cfg.LR*cfg.WeightDecay
	z := 0
	if zeroGrads {
		z = 1
	}
	return cerr(k, C.rj_adamw_step(params.p(), m.p(), v.p(), grads.p(), C.longlong(n), C.float(gradScale),
		C.float(cfg.Beta1), C.float(cfg.Beta2), C.float(cfg.Eps), C.float(stepSize), C.float(invBc2), C.float(decay), C.int(z)))
}

// GradNorm is kernels.GradNorm of the first n elements of g: sqrt(Σ g²) in
// float64, per chunk of 2^14 in order, then the chunks in order. It waits
// for the result.
func (d *Device) GradNorm(g *Buf, n int) (float64, error) {
	const k = "grad_norm"
	if err := check(k, f32("g", g, n)); err != nil {
		return 0, err
	}
	part, err := d.Scratch("grad_norm", F64, (n+(1<<14)-1)/(1<<14)+1)
	if err != nil {
		return 0, err
	}
	var out C.double
	if err := cerr(k, C.rj_grad_norm(&out, g.p(), C.longlong(n), part.p())); err != nil {
		return 0, err
	}
	return float64(out), d.devErr()
}
