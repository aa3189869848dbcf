//go:build cuda && cgo

package cuda

/*
#include "rljob_cuda.h"
*/
import "C"

import (
	"fmt"
	"slices"
)

func checkGQA(k string, NH, NKV, HS int) error {
	if NKV <= 0 || NH%NKV != 0 || HS <= 0 {
		return fmt.Errorf("cuda: %s: NH=%d must be a positive multiple of NKV=%d, HS=%d > 0", k, NH, NKV, HS)
	}
	return nil
}

func optU8(name string, b *Buf, n int) arg {
	return arg{name: name, b: b, dt: U8, n: n, optional: true}
}

// AttentionForward is kernels.AttentionForward (batch-invariant, same
// bits): out (B,T,NH,HS), lse (B,NH,T), q (B,T,NH,HS), k, v (B,T,NKV,HS),
// valid (B,T) U8 mask or nil. It keeps B·NH·T·T floats of scores in the
// device's scratch.
func (d *Device) AttentionForward(out, lse, q, k, v, valid *Buf, B, T, NH, NKV, HS int) error {
	const name = "attention_forward"
	if err := checkGQA(name, NH, NKV, HS); err != nil {
		return err
	}
	if err := check(name, f32("out", out, B*T*NH*HS), f32("lse", lse, B*NH*T), f32("q", q, B*T*NH*HS),
		f32("k", k, B*T*NKV*HS), f32("v", v, B*T*NKV*HS), optU8("valid", valid, B*T)); err != nil {
		return err
	}
	S, err := d.Scratch("attention scores", F32, B*NH*T*T)
	if err != nil {
		return err
	}
	return cerr(name, C.rj_attn_fwd(out.p(), lse.p(), q.p(), k.p(), v.p(), valid.p(), S.p(),
		C.int(B), C.int(T), C.int(NH), C.int(NKV), C.int(HS)))
}

// AttentionBackward is kernels.AttentionBackward's matrix-product path
// (kernels uses it for 8 <= T <= 4096, and scalar loops with other bits
// outside; docs/cuda.md): dq, dk, dv accumulated. It keeps 2·B·NKV·T·T
// floats of scratch.
func (d *Device) AttentionBackward(dq, dk, dv, dout, q, k, v, out, lse, valid *Buf, B, T, NH, NKV, HS int) error {
	const name = "attention_backward"
	if err := checkGQA(name, NH, NKV, HS); err != nil {
		return err
	}
	nq, nk := B*T*NH*HS, B*T*NKV*HS
	if err := check(name, f32("dq", dq, nq), f32("dk", dk, nk), f32("dv", dv, nk), f32("dout", dout, nq),
		f32("q", q, nq), f32("k", k, nk), f32("v", v, nk), f32("out", out, nq), f32("lse", lse, B*NH*T),
		optU8("valid", valid, B*T)); err != nil {
		return err
	}
	P, err := d.Scratch("attention P", F32, B*NKV*T*T)
	if err != nil {
		return err
	}
	dP, err := d.Scratch("attention dP", F32, B*NKV*T*T)
	if err != nil {
		return err
	}
	D, err := d.Scratch("attention D", F32, B*T*NH)
	if err != nil {
		return err
	}
	return cerr(name, C.rj_attn_bwd(dq.p(), dk.p(), dv.p(), dout.p(), q.p(), k.p(), v.p(), out.p(), lse.p(), valid.p(),
		P.p(), dP.p(), D.p(), C.int(B), C.int(T), C.int(NH), C.int(NKV), C.int(HS)))
}

// AttentionDecode is kernels.AttentionDecodeBI for a batch of sequences,
// one new query each: out (B, NH, HS) for q (B, NH, HS, after RoPE) over
// the first lens[b] keys of sequence b's cache kc, vc (B, Tmax, NKV, HS,
// keys after RoPE; the new token's key and value already written). Same
// operations as AttentionForward's row at position lens[b]−1, so the same
// bits. A length outside [1, Tmax] leaves that sequence's out unwritten
// and is reported by the next Sync (a device-side check).
func (d *Device) AttentionDecode(out, q, kc, vc, lens *Buf, B, Tmax, NH, NKV, HS int) error {
	const name = "attention_decode"
	if err := checkGQA(name, NH, NKV, HS); err != nil {
		return err
	}
	if err := check(name, f32("out", out, B*NH*HS), f32("q", q, B*NH*HS), f32("kc", kc, B*Tmax*NKV*HS),
		f32("vc", vc, B*Tmax*NKV*HS), i32("lens", lens, B)); err != nil {
		return err
	}
	S, err := d.Scratch("attention decode scores", F32, B*NH*Tmax)
	if err != nil {
		return err
	}
	return cerr(name, C.rj_attn_decode(out.p(), q.p(), kc.p(), vc.p(), lens.p(), S.p(),
		C.int(B), C.int(Tmax), C.int(NH), C.int(NKV), C.int(HS)))
}

// AttentionDecodeRows is AttentionDecode over caches read where they are
// (the trainer's device-resident KV caches) instead of one contiguous
// copy: row i's query q (B, NH, HS) attends the first lens[i] keys of
// k[i] with the values of v[i], position u's kv head kh at element
// u·ld + kh·HS of each (ld ≥ NKV·HS: ld = NKV·HS for (T, NKV, HS) caches,
// 2·NKV·HS where each position holds its key then its value). Rows may
// share a cache. out (B, NH, HS). The same per-(row, head) device code as
// AttentionDecode (attn_decode_row in attention.cu), so the same bits:
// kernels.AttentionDecodeBI's. The rows' addresses and lengths go up as
// one table of 3·B uint64s; the scores take B·NH·max(lens) floats of
// scratch.
func (d *Device) AttentionDecodeRows(out, q *Buf, k, v []*Buf, lens []int32, ld, NH, NKV, HS int) error {
	const name = "attention_decode_rows"
	if err := checkGQA(name, NH, NKV, HS); err != nil {
		return err
	}
	B := len(lens)
	if len(k) != B || len(v) != B {
		return fmt.Errorf("cuda: %s: %d key and %d value buffers for %d rows", name, len(k), len(v), B)
	}
	if ld < NKV*HS {
		return fmt.Errorf("cuda: %s: position stride ld=%d < NKV·HS=%d", name, ld, NKV*HS)
	}
	if B == 0 {
		return nil
	}
	if err := check(name, f32("out", out, B*NH*HS), f32("q", q, B*NH*HS)); err != nil {
		return err
	}
	Tmax := 1
	d.tab = slices.Grow(d.tab[:0], 3*B)[:3*B]
	for i, n := range lens {
		if n < 1 {
			return fmt.Errorf("cuda: %s: row %d attends %d keys, need ≥ 1", name, i, n)
		}
		need := (int(n)-1)*ld + NKV*HS
		for _, c := range [...]struct {
			what string
			b    *Buf
		}{{"keys", k[i]}, {"values", v[i]}} {
			if c.b == nil || c.b.DType != F32 || c.b.N < need {
				return fmt.Errorf("cuda: %s: row %d: %s %s, need f32 with %d elements for %d positions", name, i, c.what, bufDesc(c.b), need, n)
			}
		}
		d.tab[i], d.tab[B+i], d.tab[2*B+i] = k[i].ptr, v[i].ptr, uint64(n)
		Tmax = max(Tmax, int(n))
	}
	tab, err := d.Scratch("attention decode table", U64, 3*B)
	if err != nil {
		return err
	}
	if err := d.uploadU64(tab, d.tab); err != nil {
		return err
	}
	S, err := d.Scratch("attention decode scores", F32, B*NH*Tmax)
	if err != nil {
		return err
	}
	return cerr(name, C.rj_attn_decode_rows(out.p(), q.p(), tab.p(), S.p(), C.int(B), C.int(Tmax), C.longlong(ld),
		C.int(NH), C.int(NKV), C.int(HS)))
}
