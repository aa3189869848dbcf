//go:build !cuda || !cgo

package cuda

import (
	"errors"
	"os"
	"testing"
)

// TestStub checks that a build without CUDA says so, and fails (instead of
// passing quietly) when RLJOB_REQUIRE_CUDA=1 asks for the real kernels.
func TestStub(t *testing.T) {
	if os.Getenv("RLJOB_REQUIRE_CUDA") == "1" {
		t.Fatal("RLJOB_REQUIRE_CUDA=1 but this test binary was built without CUDA: run go test -tags cuda (after make build-cuda)")
	}
	if _, err := Open(0); !errors.Is(err, ErrNoCUDA) || err.Error() != "built without CUDA (make build-cuda)" {
		t.Fatalf("Open: %v, want ErrNoCUDA", err)
	}
	if n, err := DeviceCount(); n != 0 || !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("DeviceCount: %d, %v", n, err)
	}
}
