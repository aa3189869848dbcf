//go:build cuda && cgo && cudaemu && !asan

package cuda

// The emulator's library is compiled with AddressSanitizer, so a build
// with the cudaemu tag needs go's -asan flag (make test-cuda-emu):
// without it, this undefined name stops the build here, saying so.
var _ = theCudaemuTagNeedsGoTestAsan
