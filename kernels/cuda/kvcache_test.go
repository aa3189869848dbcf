//go:build cuda && cgo

package cuda

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// TestAttentionDecodeRows: the decode over caches read in place (each row
// its own cache buffer, (cap, 2, NKV, HS) as the trainer's device caches:
// ld = 2·NKV·HS, the values NKV·HS floats after the keys) gives the bits
// of kernels.AttentionDecodeBI and of the contiguous AttentionDecode over
// the same keys, and so does AttentionDecodeRows over one contiguous
// (B, Tmax, NKV, HS) pair (ld = NKV·HS, views per row). Shapes are not
// multiples of the kernel's 128 threads or 32 lanes (HS 20, 64, 136;
// lengths 1 to 150, past 128), rows have different lengths, and several
// rows share a cache with different lengths (a prefill's rows).
func TestAttentionDecodeRows(t *testing.T) {
	d := openDev(t)
	type row struct{ cache, n int }
	for _, tc := range []struct {
		name        string
		NH, NKV, HS int
		caches      []int // positions each cache holds
		rows        []row
	}{
		{"gqa3/hs20", 6, 2, 20, []int{45, 17, 1, 150}, []row{{0, 45}, {0, 44}, {0, 3}, {1, 17}, {2, 1}, {3, 150}, {3, 129}}},
		{"gqa7/hs64", 14, 2, 64, []int{130, 9}, []row{{0, 130}, {1, 9}, {0, 129}, {0, 1}}},
		{"mha/hs136", 3, 3, 136, []int{33}, []row{{0, 33}, {0, 1}, {0, 32}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(31, uint64(tc.HS)))
			NH, NKV, HS := tc.NH, tc.NKV, tc.HS
			kvd, qd, R := NKV*HS, NH*HS, len(tc.rows)
			// Host keys and values of each cache, (n, NKV, HS) each.
			keys, vals := make([][]float32, len(tc.caches)), make([][]float32, len(tc.caches))
			cpuC := make([]*kernels.KVCacheBI, len(tc.caches))
			kvBuf, kvVal := make([]*Buf, len(tc.caches)), make([]*Buf, len(tc.caches))
			for c, n := range tc.caches {
				keys[c], vals[c] = randn(rng, n*kvd, 1), randn(rng, n*kvd, 1)
				cpuC[c] = kernels.NewKVCacheBI(NKV, HS, 3)
				capacity := n + 5 // room past the keys, as a cache has
				inter := make([]float32, capacity*2*kvd)
				for u := range n {
					cpuC[c].Append(keys[c][u*kvd:(u+1)*kvd], vals[c][u*kvd:(u+1)*kvd])
					copy(inter[u*2*kvd:], keys[c][u*kvd:(u+1)*kvd])
					copy(inter[u*2*kvd+kvd:], vals[c][u*kvd:(u+1)*kvd])
				}
				kvBuf[c] = up(t, d, "cache", inter)
				kvVal[c] = kvBuf[c].View(kvd, len(inter)-kvd)
			}
			q := randn(rng, R*qd, 1)
			want := make([]float32, R*qd)
			lens := make([]int32, R)
			Tmax := 1
			for i, r := range tc.rows {
				s := make([]float32, NH*r.n)
				kernels.AttentionDecodeBI(want[i*qd:(i+1)*qd], q[i*qd:(i+1)*qd], cpuC[r.cache], r.n, NH, s)
				lens[i] = int32(r.n)
				Tmax = max(Tmax, r.n)
			}
			qb := up(t, d, "q", q)
			// In place: each row's cache buffer.
			k, v := make([]*Buf, R), make([]*Buf, R)
			for i, r := range tc.rows {
				k[i], v[i] = kvBuf[r.cache], kvVal[r.cache]
			}
			ob := up(t, d, "out", make([]float32, R*qd))
			must(t, d.AttentionDecodeRows(ob, qb, k, v, lens, 2*kvd, NH, NKV, HS))
			got := down(t, d, ob, R*qd)
			sameBits(t, "decode in place vs AttentionDecodeBI", got, want)
			// The contiguous copy (B, Tmax, NKV, HS), through AttentionDecode
			// and through AttentionDecodeRows with views (ld = NKV·HS).
			kc, vc := make([]float32, R*Tmax*kvd), make([]float32, R*Tmax*kvd)
			for i, r := range tc.rows {
				copy(kc[i*Tmax*kvd:], keys[r.cache][:r.n*kvd])
				copy(vc[i*Tmax*kvd:], vals[r.cache][:r.n*kvd])
			}
			kb, vb := up(t, d, "kc", kc), up(t, d, "vc", vc)
			oc := up(t, d, "out contiguous", make([]float32, R*qd))
			must(t, d.AttentionDecode(oc, qb, kb, vb, upI32(t, d, "lens", lens), R, Tmax, NH, NKV, HS))
			sameBits(t, "decode in place vs contiguous AttentionDecode", got, down(t, d, oc, R*qd))
			for i := range tc.rows {
				k[i], v[i] = kb.View(i*Tmax*kvd, Tmax*kvd), vb.View(i*Tmax*kvd, Tmax*kvd)
			}
			ov := up(t, d, "out views", make([]float32, R*qd))
			must(t, d.AttentionDecodeRows(ov, qb, k, v, lens, kvd, NH, NKV, HS))
			sameBits(t, "decode over views of a contiguous copy", down(t, d, ov, R*qd), want)
		})
	}
}

// TestScatterRowsCopy: ScatterRows puts rows of one staged upload into
// several buffers at their offsets (rows of different lengths, two into
// one buffer, one into a view) and leaves the rest unchanged; Copy copies
// within the device, into a view too.
func TestScatterRowsCopy(t *testing.T) {
	d := openDev(t)
	rng := rand.New(rand.NewPCG(33, 34))
	src := randn(rng, 300, 1)
	a0, b0 := randn(rng, 200, 1), randn(rng, 50, 1)
	a, b := up(t, d, "a", a0), up(t, d, "b", b0)
	rows := []RowCopy{
		{Dst: a, DstOff: 0, SrcOff: 10, N: 40},
		{Dst: b, DstOff: 7, SrcOff: 0, N: 43},
		{Dst: a, DstOff: 150, SrcOff: 200, N: 50},
		{Dst: a.View(60, 100), DstOff: 5, SrcOff: 299, N: 1},
		{Dst: b, DstOff: 0, SrcOff: 55, N: 0},
	}
	must(t, d.ScatterRows(up(t, d, "src", src), rows))
	wantA, wantB := clone(a0), clone(b0)
	copy(wantA[0:40], src[10:50])
	copy(wantB[7:50], src[0:43])
	copy(wantA[150:200], src[200:250])
	wantA[65] = src[299]
	sameBits(t, "scatter a", down(t, d, a, 200), wantA)
	sameBits(t, "scatter b", down(t, d, b, 50), wantB)

	c := up(t, d, "c", make([]float32, 120))
	must(t, d.Copy(c, a, 100))
	must(t, d.Copy(c.View(100, 20), b, 20))
	sameBits(t, "copy", down(t, d, c, 120), slices.Concat(wantA[:100], wantB[:20]))
	if err := d.Copy(a.View(10, 50), a, 20); err == nil || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("Copy of overlapping ranges: %v, want an error saying they overlap", err)
	}
}

// TestKVCacheArgs: the argument checks of AttentionDecodeRows,
// ScatterRows and Copy name the kernel and what is wrong, before any
// device call (so this runs without a GPU: the buffers are descriptors of
// device memory that is never touched).
func TestKVCacheArgs(t *testing.T) {
	d := &Device{}
	buf := func(name string, dt DType, n int, ptr uint64) *Buf {
		return &Buf{Name: name, DType: dt, N: n, ptr: ptr, owner: false}
	}
	const NH, NKV, HS = 4, 2, 8
	kvd := NKV * HS
	out, q := buf("out", F32, 2*NH*HS, 1<<20), buf("q", F32, 2*NH*HS, 2<<20)
	kc := buf("cache", F32, 10*2*kvd, 3<<20)
	vcv := kc.View(kvd, 10*2*kvd-kvd)
	ok := func() ([]*Buf, []*Buf, []int32) { return []*Buf{kc, kc}, []*Buf{vcv, vcv}, []int32{10, 3} }
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"gqa", func() error { k, v, l := ok(); return d.AttentionDecodeRows(out, q, k, v, l, 2*kvd, 3, NKV, HS) }, "multiple of NKV"},
		{"counts", func() error { k, v, l := ok(); return d.AttentionDecodeRows(out, q, k[:1], v, l, 2*kvd, NH, NKV, HS) }, "1 key and 2 value buffers for 2 rows"},
		{"ld", func() error { k, v, l := ok(); return d.AttentionDecodeRows(out, q, k, v, l, kvd-1, NH, NKV, HS) }, "position stride"},
		{"out", func() error {
			k, v, l := ok()
			return d.AttentionDecodeRows(buf("small", F32, 5, 1), q, k, v, l, 2*kvd, NH, NKV, HS)
		}, "out (small) has 5 elements"},
		{"empty row", func() error {
			k, v, _ := ok()
			return d.AttentionDecodeRows(out, q, k, v, []int32{10, 0}, 2*kvd, NH, NKV, HS)
		}, "row 1 attends 0 keys"},
		{"long row", func() error {
			k, v, _ := ok()
			return d.AttentionDecodeRows(out, q, k, v, []int32{11, 3}, 2*kvd, NH, NKV, HS)
		}, "row 0: keys cache"},
		{"values past the end", func() error {
			k, v, l := ok()
			v[1] = kc.View(kvd, 5*2*kvd) // room for 5 positions, row 1 reads 3: fine; row 0 reads 10
			v[0] = v[1]
			return d.AttentionDecodeRows(out, q, k, v, l, 2*kvd, NH, NKV, HS)
		}, "row 0: values cache"},
		{"nil cache", func() error {
			k, v, l := ok()
			k[1] = nil
			return d.AttentionDecodeRows(out, q, k, v, l, 2*kvd, NH, NKV, HS)
		}, "row 1: keys nil"},
		{"int cache", func() error {
			k, v, l := ok()
			k[0] = buf("ints", I32, 1000, 1)
			return d.AttentionDecodeRows(out, q, k, v, l, 2*kvd, NH, NKV, HS)
		}, "row 0: keys ints (1000 × i32)"},
		{"scatter dst", func() error {
			return d.ScatterRows(buf("src", F32, 100, 1), []RowCopy{{Dst: buf("a", F32, 10, 2), DstOff: 5, N: 6}})
		}, "scatter_rows: row 0: 6 floats at 5 of a"},
		{"scatter src", func() error {
			return d.ScatterRows(buf("src", F32, 100, 1), []RowCopy{{Dst: buf("a", F32, 10, 2), N: 1}, {Dst: buf("b", F32, 10, 3), SrcOff: 95, N: 6}})
		}, "row 1: 6 floats at 95 of the source"},
		{"scatter type", func() error {
			return d.ScatterRows(buf("src", I32, 100, 1), []RowCopy{{Dst: buf("a", F32, 10, 2), N: 1}})
		}, "source src (100 × i32)"},
		{"copy type", func() error { return d.Copy(buf("a", F32, 10, 1<<10), buf("b", I32, 10, 2<<10), 5) }, "copy 5 elements"},
		{"copy length", func() error { return d.Copy(buf("a", F32, 10, 1<<10), buf("b", F32, 4, 2<<10), 5) }, "copy 5 elements from b (4 × f32)"},
		{"copy overlap", func() error { return d.Copy(kc.View(8, 100), kc, 10) }, "overlap"},
	} {
		err := tc.run()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestOpenOrdinal: an ordinal other than 0 is refused, naming
// CUDA_VISIBLE_DEVICES, before any device call (so this runs without a
// GPU): the runtime's current device belongs to one OS thread.
func TestOpenOrdinal(t *testing.T) {
	d, err := Open(1)
	if err == nil || !strings.Contains(err.Error(), "CUDA_VISIBLE_DEVICES=1") {
		t.Fatalf("Open(1) = %v, %v; want an error naming CUDA_VISIBLE_DEVICES=1", d, err)
	}
}
