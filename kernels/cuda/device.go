//go:build cuda && cgo

package cuda

/*
#cgo CFLAGS: -I${SRCDIR}/csrc
#include <stdlib.h>
#include "rljob_cuda.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"unsafe"
)

// Built reports whether this binary has the CUDA kernels.
const Built = true

// The libraries are linked by link_static.go (cuBLAS static, the default)
// or link_dl.go (build tag cuda_dlcublas: cuBLAS loaded with dlopen).
//
// The library's content hash (libhash_gen.go, written by make build-cuda)
// is part of this package's source, so a rebuilt librljobcuda.a makes Go
// rebuild and relink the package instead of reusing a cached build.
var _ = libHash

const rcBadArg = 10001

// Device is one opened GPU. Its methods launch kernels on the device's
// default stream; it is not safe for concurrent use.
type Device struct {
	Ordinal int
	Name    string // e.g. "NVIDIA H100 80GB HBM3 (sm_90)"
	Total   uint64 // bytes of device memory
	scratch map[string]*Buf
	tab     []uint64 // host staging of the device-address tables (ScatterRows, AttentionDecodeRows)
}

// DeviceCount returns the number of CUDA devices (0 and an error when the
// driver is missing or reports none).
func DeviceCount() (int, error) {
	var n C.int
	if rc := C.rj_device_count(&n); rc != 0 {
		return 0, cerr("cudaGetDeviceCount", rc)
	}
	if n == 0 {
		return 0, fmt.Errorf("cuda: no CUDA device found")
	}
	return int(n), nil
}

// Open selects GPU ordinal, creates its cuBLAS handle and returns it.
// Only ordinal 0 opens: the runtime's current device is per OS thread
// and cgo calls run on any thread, so the GPU is chosen with
// CUDA_VISIBLE_DEVICES instead (the error says so).
func Open(ordinal int) (*Device, error) {
	if ordinal != 0 { // cudaSetDevice holds for one OS thread, and Go moves goroutines between threads
		return nil, fmt.Errorf("cuda: device %d: rljob runs on device 0; choose the GPU with CUDA_VISIBLE_DEVICES=%d", ordinal, ordinal)
	}
	if _, err := DeviceCount(); err != nil {
		return nil, err
	}
	var name [256]C.char
	var total C.ulonglong
	if rc := C.rj_open(C.int(ordinal), &name[0], C.int(len(name)), &total); rc != 0 {
		return nil, cerr(fmt.Sprintf("open device %d", ordinal), rc)
	}
	d := &Device{Ordinal: ordinal, Name: C.GoString(&name[0]), Total: uint64(total), scratch: map[string]*Buf{}}
	if v := os.Getenv("RLJOB_CUDA_GEMM_TILE"); v != "" {
		t, err := strconv.Atoi(v)
		if err == nil {
			err = d.SetGemmTile(t)
		}
		if err != nil {
			return nil, fmt.Errorf("cuda: RLJOB_CUDA_GEMM_TILE=%s: want 64 or 128", v)
		}
	}
	return d, nil
}

// SetGemmTile chooses the batch-invariant GEMM's kernel for every product
// after it: 64 (64×64 output tiles, 4×4 per thread; the default) or 128
// (128×128, 8×8 per thread). The bits are the same; only the speed
// differs (BenchmarkCUDAGemm's bi and bi128). RLJOB_CUDA_GEMM_TILE sets
// it when the device opens.
func (d *Device) SetGemmTile(tile int) error {
	if C.rj_set_gemm_tile(C.int(tile)) != 0 {
		return fmt.Errorf("cuda: gemm tile %d: want 64 or 128", tile)
	}
	return nil
}

// Close frees the device's scratch buffers and its cuBLAS handle.
func (d *Device) Close() error {
	for _, b := range d.scratch {
		b.Free()
	}
	d.scratch = nil
	if rc := C.rj_close(C.int(d.Ordinal)); rc != 0 {
		return cerr("close", rc)
	}
	return nil
}

// cerr turns a launcher's return code into an *Error naming what failed.
func cerr(kernel string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	return &Error{Kernel: kernel, Code: int(rc), Msg: C.GoString(C.rj_error_string(rc))}
}

// DType is the element type of a Buf.
type DType int

// Element types.
const (
	F32  DType = iota // float32
	I32               // int32 (token ids, positions)
	U8                // bool masks
	BF16              // bfloat16 bits
	F64               // float64 (scratch)
	U64               // uint64 (tables of device addresses)
)

// Size returns the bytes of one element.
func (t DType) Size() int { return [...]int{4, 4, 1, 2, 8, 8}[t] }

func (t DType) String() string { return [...]string{"f32", "i32", "u8", "bf16", "f64", "u64"}[t] }

// Buf is a range of device memory: N elements of DType. A Buf from Alloc
// owns its memory (Free releases it); one from View shares it.
type Buf struct {
	Name  string
	DType DType
	N     int
	ptr   uint64 // device address (never a Go pointer)
	owner bool
}

// Alloc allocates n elements of dt on the device. Out of memory is an
// error naming the buffer and the sizes, with what to try instead.
func (d *Device) Alloc(name string, dt DType, n int) (*Buf, error) {
	if n <= 0 {
		return nil, fmt.Errorf("cuda: alloc %s: %d elements; need > 0", name, n)
	}
	bytes := uint64(n) * uint64(dt.Size())
	var p C.dptr
	if rc := C.rj_malloc(&p, C.ulonglong(bytes)); rc != 0 {
		var free, total C.ulonglong
		C.rj_mem_info(&free, &total)
		if rc == 2 { // cudaErrorMemoryAllocation
			return nil, fmt.Errorf("cuda: out of GPU memory allocating %s: %d × %s = %s, %s free of %s on %s; use a smaller micro-batch, bf16, or LoRA",
				name, n, dt, human(bytes), human(uint64(free)), human(uint64(total)), d.Name)
		}
		return nil, cerr("cudaMalloc "+name, rc)
	}
	return &Buf{Name: name, DType: dt, N: n, ptr: uint64(p), owner: true}, nil
}

// MemInfo returns the device's free and total memory in bytes.
func (d *Device) MemInfo() (free, total uint64, err error) {
	var f, t C.ulonglong
	if rc := C.rj_mem_info(&f, &t); rc != 0 {
		return 0, 0, cerr("cudaMemGetInfo", rc)
	}
	return uint64(f), uint64(t), nil
}

func human(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d B", b)
}

// Free releases an owned buffer (a View's Free does nothing).
func (b *Buf) Free() {
	if b != nil && b.owner && b.ptr != 0 {
		C.rj_free(C.dptr(b.ptr))
		b.ptr = 0
	}
}

// View returns elements [off, off+n) of b, sharing its memory.
func (b *Buf) View(off, n int) *Buf {
	if off < 0 || n < 0 || off+n > b.N {
		panic(fmt.Sprintf("cuda: view [%d,%d) of %s (%d elements)", off, off+n, b.Name, b.N))
	}
	return &Buf{Name: fmt.Sprintf("%s[%d:%d]", b.Name, off, off+n), DType: b.DType, N: n,
		ptr: b.ptr + uint64(off*b.DType.Size())}
}

// p is the device address for a launcher (0 for a nil Buf: "absent").
func (b *Buf) p() C.dptr {
	if b == nil {
		return 0
	}
	return C.dptr(b.ptr)
}

func (d *Device) copyIn(b *Buf, src unsafe.Pointer, n int, dt DType) error {
	if b.DType != dt || n > b.N {
		return fmt.Errorf("cuda: upload %d × %s into %s (%d × %s)", n, dt, b.Name, b.N, b.DType)
	}
	if n == 0 {
		return nil
	}
	return cerr("upload "+b.Name, C.rj_upload(b.p(), src, C.ulonglong(n*dt.Size())))
}

func (d *Device) copyOut(dst unsafe.Pointer, b *Buf, n int, dt DType) error {
	if b.DType != dt || n > b.N {
		return fmt.Errorf("cuda: download %d × %s from %s (%d × %s)", n, dt, b.Name, b.N, b.DType)
	}
	if n == 0 {
		return nil
	}
	if err := cerr("download "+b.Name, C.rj_download(dst, b.p(), C.ulonglong(n*dt.Size()))); err != nil {
		return err
	}
	return d.devErr()
}

// Upload copies host floats into the start of b.
func (d *Device) Upload(b *Buf, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return d.copyIn(b, unsafe.Pointer(&src[0]), len(src), F32)
}

// UploadInt32 copies host int32s (token ids, positions, targets) into b.
func (d *Device) UploadInt32(b *Buf, src []int32) error {
	if len(src) == 0 {
		return nil
	}
	return d.copyIn(b, unsafe.Pointer(&src[0]), len(src), I32)
}

// UploadBool copies a host mask into b (one byte per element).
func (d *Device) UploadBool(b *Buf, src []bool) error {
	if len(src) == 0 {
		return nil
	}
	return d.copyIn(b, unsafe.Pointer(&src[0]), len(src), U8)
}

// UploadF64 copies host float64s into b.
func (d *Device) UploadF64(b *Buf, src []float64) error {
	if len(src) == 0 {
		return nil
	}
	return d.copyIn(b, unsafe.Pointer(&src[0]), len(src), F64)
}

// uploadU64 copies host uint64s (device addresses, lengths) into b.
func (d *Device) uploadU64(b *Buf, src []uint64) error {
	if len(src) == 0 {
		return nil
	}
	return d.copyIn(b, unsafe.Pointer(&src[0]), len(src), U64)
}

// Copy copies the first n elements of src into the start of dst on the
// device, ordered after the kernels queued before it (no host wait). The
// ranges must not overlap.
func (d *Device) Copy(dst, src *Buf, n int) error {
	if dst == nil || src == nil || dst.DType != src.DType || n < 0 || n > dst.N || n > src.N {
		return fmt.Errorf("cuda: copy %d elements from %s into %s: %s", n, bufDesc(src), bufDesc(dst), "need two buffers of one type with room for them")
	}
	if n == 0 {
		return nil
	}
	if bytes := uint64(n * dst.DType.Size()); src.ptr < dst.ptr+bytes && dst.ptr < src.ptr+bytes {
		return fmt.Errorf("cuda: copy %d elements from %s into %s: the ranges overlap", n, bufDesc(src), bufDesc(dst))
	}
	return cerr("copy "+src.Name+" to "+dst.Name, C.rj_copy_d2d(dst.p(), src.p(), C.ulonglong(n*dst.DType.Size())))
}

// bufDesc names b in an error: "name (n × type)", or "nil".
func bufDesc(b *Buf) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%s (%d × %s)", b.Name, b.N, b.DType)
}

// Download copies the start of b into dst (after every queued kernel), and
// reports a device-side error if a kernel recorded one.
func (d *Device) Download(dst []float32, b *Buf) error {
	if len(dst) == 0 {
		return nil
	}
	return d.copyOut(unsafe.Pointer(&dst[0]), b, len(dst), F32)
}

// DownloadInt32 copies the start of b into dst.
func (d *Device) DownloadInt32(dst []int32, b *Buf) error {
	if len(dst) == 0 {
		return nil
	}
	return d.copyOut(unsafe.Pointer(&dst[0]), b, len(dst), I32)
}

// DownloadBF16 copies the start of a BF16 buffer into dst (bfloat16 bits).
func (d *Device) DownloadBF16(dst []uint16, b *Buf) error {
	if len(dst) == 0 {
		return nil
	}
	return d.copyOut(unsafe.Pointer(&dst[0]), b, len(dst), BF16)
}

// Zero sets b to zero bytes (asynchronously).
func (d *Device) Zero(b *Buf) error {
	return cerr("memset "+b.Name, C.rj_memset0(b.p(), C.ulonglong(b.N*b.DType.Size())))
}

// Sync waits for every queued kernel and returns the first error: a
// failure inside a kernel, or a device-side check.
func (d *Device) Sync() error {
	if err := cerr("cudaDeviceSynchronize", C.rj_sync()); err != nil {
		return err
	}
	return d.devErr()
}

var devErrKernel = map[int]string{1: "embedding_forward", 2: "embedding_backward", 3: "rope", 4: "head_forward", 5: "sample", 6: "attention_decode"}
var devErrWhat = map[int]string{1: "token", 2: "token", 3: "position", 4: "target", 5: "sampled token", 6: "key count"}
var devErrLow = map[int]int{6: 1} // the range's low end, else 0

// devErr reads and clears the device-side error word.
func (d *Device) devErr() error {
	var code, kernel C.int
	var index, value, limit C.longlong
	if rc := C.rj_take_dev_err(&code, &kernel, &index, &value, &limit); rc != 0 {
		return cerr("read device error word", rc)
	}
	if code == 0 {
		return nil
	}
	k := int(kernel)
	return fmt.Errorf("cuda: %s: %s %d at row %d out of range [%d,%d)", devErrKernel[k], devErrWhat[k], value, index, devErrLow[k], limit)
}

// Scratch returns the device's scratch buffer called name with room for at
// least n elements of dt, reallocating (growing) when it is too small.
// Kernels that need temporary memory (attention's scores, sampling's sort)
// use it, so a stage allocates once.
func (d *Device) Scratch(name string, dt DType, n int) (*Buf, error) {
	n = max(n, 1) // an empty call's kernels do nothing, but Alloc refuses 0
	if b := d.scratch[name]; b != nil && b.DType == dt && b.N >= n {
		return b.View(0, n), nil
	}
	if b := d.scratch[name]; b != nil {
		if err := d.Sync(); err != nil {
			return nil, err
		}
		b.Free()
		delete(d.scratch, name)
	}
	b, err := d.Alloc("scratch "+name, dt, n)
	if err != nil {
		return nil, err
	}
	d.scratch[name] = b
	return b.View(0, n), nil
}
