//go:build cgo && amd64

package kernels

import "testing"

// TestBF16DotChoice: on a CPU with AVX512_BF16, the kernel start-up chose
// (bf16DPFaster) is the faster of the two when a longer timing sets them
// clearly apart (by 1.3× or more either way: 2× on Zen 5, 0.5× on an Intel
// Xeon); and BF16Dot names it.
func TestBF16DotChoice(t *testing.T) {
	if !bf16HasDP {
		t.Skip("the CPU has no AVX512_BF16: bf16 always runs on FMAs")
	}
	dp, fma := bf16DotRates(200000, 3)
	t.Logf("VDPBF16PS %.1f, FMAs %.1f multiply-adds a ns; start-up chose VDPBF16PS: %v", dp, fma, bf16DPFaster)
	switch r := dp / fma; {
	case r >= 1.3 && !bf16DPFaster:
		t.Errorf("VDPBF16PS is %.2f× the FMAs' rate, but start-up chose the FMA twin", r)
	case r <= 1/1.3 && bf16DPFaster:
		t.Errorf("VDPBF16PS is %.2f× the FMAs' rate, but start-up chose it", r)
	}
	defer func() { _ = UseBF16Dot("") }()
	useSet(t, 2)
	if err := UseBF16Dot(""); err != nil {
		t.Fatal(err)
	}
	want := map[bool]string{true: "VDPBF16PS", false: "FMAs, faster than VDPBF16PS here"}[bf16DPFaster]
	if got := BF16Dot(); got != want {
		t.Errorf("BF16Dot() = %q, want %q", got, want)
	}
}
