package arrowio

import "unsafe"

// bytesOf views a numeric slice as its little-endian bytes (no copy); Arrow
// buffers are little-endian on every platform Go's arrow supports.
func bytesOf[T int32 | int64 | float32 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}
