//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import "fmt"

// HeadForward is kernels.HeadForward over N rows of logits (N, V), the
// first VL ids sampleable: e (N, V), r, lse, logp (N), ent (N) or nil. Each
// row's float64 sum runs in id order as on the CPU (same bits). The caller
// chunks over rows so that the (N, V) logits and e fit.
func (d *Device) HeadForward(e, r, lse, logp, ent, logits, targets *Buf, N, V, VL int, temp float32) error {
	const k = "head_forward"
	if err := checkHead(k, V, VL, temp); err != nil {
		return err
	}
	if err := check(k, f32("e", e, N*V), f32("r", r, N), f32("lse", lse, N), f32("logp", logp, N), opt32("ent", ent, N),
		f32("logits", logits, N*V), i32("targets", targets, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_head_fwd(e.p(), r.p(), lse.p(), logp.p(), ent.p(), logits.p(), targets.p(),
		C.int(N), C.int(V), C.int(VL), C.float(temp)))
}

// HeadBackwardLogp is kernels.HeadBackwardLogp: e becomes dlogits (dent
// may be nil, and ent then too).
func (d *Device) HeadBackwardLogp(e, r, dlogp, dent, logits, lse, ent, targets *Buf, N, V, VL int, temp float32) error {
	const k = "head_backward_logp"
	if err := checkHead(k, V, VL, temp); err != nil {
		return err
	}
	if err := check(k, f32("e", e, N*V), f32("r", r, N), f32("dlogp", dlogp, N), opt32("dent", dent, N),
		f32("logits", logits, N*V), f32("lse", lse, N), arg{name: "ent", b: ent, dt: F32, n: N, optional: dent == nil},
		i32("targets", targets, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_head_bwd_logp(e.p(), r.p(), dlogp.p(), dent.p(), logits.p(), lse.p(), ent.p(), targets.p(),
		C.int(N), C.int(V), C.int(VL), C.float(temp)))
}

// HeadBackwardCE is kernels.HeadBackwardCE.
func (d *Device) HeadBackwardCE(e, r *Buf, dloss float32, targets *Buf, count, N, V int) error {
	const k = "head_backward_ce"
	if err := check(k, f32("e", e, N*V), f32("r", r, N), i32("targets", targets, N)); err != nil {
		return err
	}
	return cerr(k, C.rj_head_bwd_ce(e.p(), r.p(), C.float(dloss), targets.p(), C.int(count), C.int(N), C.int(V)))
}

func checkHead(k string, V, VL int, temp float32) error {
	if VL <= 0 || VL > V || !(temp > 0) {
		return fmt.Errorf("cuda: %s: VL=%d must be in [1, V=%d], temperature %v > 0", k, VL, V, temp)
	}
	return nil
}
