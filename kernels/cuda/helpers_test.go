//go:build cuda && cgo

package cuda

import (
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
)

var (
	devOnce sync.Once
	dev     *Device
	devErr  error
)

// openDev returns the test binary's GPU, or skips the test saying why;
// with RLJOB_REQUIRE_CUDA=1 the skip is a failure.
func openDev(t testing.TB) *Device {
	t.Helper()
	devOnce.Do(func() { dev, devErr = Open(0) })
	if devErr != nil {
		if os.Getenv("RLJOB_REQUIRE_CUDA") == "1" {
			t.Fatalf("RLJOB_REQUIRE_CUDA=1 but no usable GPU: %v", devErr)
		}
		t.Skipf("no CUDA device (%v); RLJOB_REQUIRE_CUDA=1 turns this skip into a failure", devErr)
	}
	return dev
}

func randn(rng *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64()) * scale
	}
	return x
}

func up(t testing.TB, d *Device, name string, x []float32) *Buf {
	t.Helper()
	b, err := d.Alloc(name, F32, max(1, len(x)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	if err := d.Upload(b, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func upI32(t testing.TB, d *Device, name string, x []int32) *Buf {
	t.Helper()
	b, err := d.Alloc(name, I32, max(1, len(x)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	if err := d.UploadInt32(b, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func upBool(t testing.TB, d *Device, name string, x []bool) *Buf {
	t.Helper()
	b, err := d.Alloc(name, U8, max(1, len(x)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Free)
	if err := d.UploadBool(b, x); err != nil {
		t.Fatal(err)
	}
	return b
}

func down(t testing.TB, d *Device, b *Buf, n int) []float32 {
	t.Helper()
	x := make([]float32, n)
	if err := d.Download(x, b); err != nil {
		t.Fatal(err)
	}
	return x
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameBits fails unless got and want are equal bit for bit, reporting the
// first difference, how many differ and the largest difference in ulps.
func sameBits(t testing.TB, name string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	first, count, maxUlp := -1, 0, int64(0)
	for i := range got {
		a, b := math.Float32bits(got[i]), math.Float32bits(want[i])
		if a != b {
			if first < 0 {
				first = i
			}
			count++
			maxUlp = max(maxUlp, abs64(int64(int32(a))-int64(int32(b))))
		}
	}
	if count > 0 {
		t.Errorf("%s: %d of %d values differ from the CPU's bits; first at %d: got %v (%#x), want %v (%#x); max %d ulp",
			name, count, len(got), first, got[first], math.Float32bits(got[first]), want[first], math.Float32bits(want[first]), maxUlp)
	}
}

// near fails when |got − want| > tol·(1 + |want|) anywhere.
func near(t testing.TB, name string, got, want []float32, tol float64) {
	t.Helper()
	worst, at := 0.0, -1
	for i := range got {
		e := math.Abs(float64(got[i])-float64(want[i])) / (1 + math.Abs(float64(want[i])))
		if e > worst || e != e {
			worst, at = e, i
		}
	}
	if worst > tol || worst != worst {
		t.Errorf("%s: relative error %.3g at %d (got %v, want %v), tolerance %.3g", name, worst, at, got[at], want[at], tol)
	}
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }
