package safetensors

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rljob/rljob/kernels"
)

// TestFloat32ToBF16IsKernelsBF16: the file format's bf16 rounding is the
// one the bf16 forward computes with (kernels.BF16), so a bf16 checkpoint
// holds exactly the weights its model used: on specials, subnormals,
// ties and random bit patterns.
func TestFloat32ToBF16IsKernelsBF16(t *testing.T) {
	xs := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x00000001), math.Float32frombits(0x807fffff), math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000),
		math.MaxFloat32, math.SmallestNonzeroFloat32}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		xs = append(xs, math.Float32frombits(rng.Uint32()))
	}
	for _, x := range xs {
		if got, want := Float32ToBF16(x), kernels.BF16(x); got != want {
			t.Fatalf("Float32ToBF16(%#08x) = %#04x, kernels.BF16 gives %#04x", math.Float32bits(x), got, want)
		}
	}
}
