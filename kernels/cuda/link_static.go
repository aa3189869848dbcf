//go:build cuda && cgo && !cuda_dlcublas && !cudaemu

package cuda

// The kernels with cuBLAS, cublasLt and the CUDA runtime linked statically:
// the binary needs only the driver's libcuda.so.1 (bin/rljob-cuda).

/*
#cgo LDFLAGS: -L${SRCDIR}/lib -lrljobcuda -lcublas_static -lcublasLt_static -lculibos -lcudart_static -lstdc++ -lm -ldl -lpthread -lrt
*/
import "C"

// CublasLinked says how cuBLAS is linked.
const CublasLinked = "static"
