//go:build cuda && cgo && cuda_dlcublas && !cudaemu

package cuda

// The kernels and the CUDA runtime linked statically, cuBLAS loaded at run
// time with dlopen (libcublas.so, .so.13, .so.12 or .so.11 on the library
// path): a small binary for a GPU machine that has no Go (make
// cuda-test-bin). Without a libcublas, GemmCublas fails and saying so,
// everything else works.

/*
#cgo LDFLAGS: -L${SRCDIR}/lib -lrljobcuda_dl -lculibos -lcudart_static -lstdc++ -lm -ldl -lpthread -lrt
*/
import "C"

// CublasLinked says how cuBLAS is linked.
const CublasLinked = "dlopen"
