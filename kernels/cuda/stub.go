//go:build !cuda || !cgo

package cuda

// Device is a GPU; in this build (no cuda tag or no cgo) none can be opened.
type Device struct {
	Ordinal int
	Name    string
	Total   uint64
}

// Close does nothing: no Device exists in this build.
func (d *Device) Close() error { return nil }

// Open returns ErrNoCUDA: this binary was built without CUDA.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// DeviceCount returns ErrNoCUDA: this binary was built without CUDA.
func DeviceCount() (int, error) { return 0, ErrNoCUDA }

// Built reports whether this binary has the CUDA kernels.
const Built = false
