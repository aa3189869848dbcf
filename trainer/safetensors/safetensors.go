// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors), the layout of HF
// `model.safetensors` checkpoints.
//
// File layout:
//
//	[8 bytes]  N, the header length, little-endian uint64
//	[N bytes]  JSON header, padded with spaces so that N % 8 == 0:
//	           {"__metadata__": {"k": "v", ...},              (optional, string values)
//	            "name": {"dtype": "F32", "shape": [d0, d1, ...],
//	                     "data_offsets": [begin, end]}, ...}
//	[rest]     the byte buffer; a tensor's bytes are buffer[begin:end],
//	           row-major, little-endian
//
// The writer emits F32 or BF16 tensors (Tensor.DType; BF16 rounds the
// float32 data with kernels.BF16, the rounding of the bf16 forward),
// sorted by name and packed without gaps, exactly as the Python/Rust
// library writes a file. The
// reader accepts F32, BF16 and F16 tensors (converted to float32) and knows
// the sizes of the other standard dtypes so it can validate any file, but
// Tensor returns an error for them. A file is validated as the Rust library
// does: the buffer must be indexed entirely, without holes or overlaps, and
// every tensor's byte count must equal numel × dtype size. A malformed or
// truncated file is an error naming the tensor, never a panic.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/rljob/rljob/kernels"
)

// MaxHeaderSize is the largest JSON header accepted (the Rust library's limit).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding the string→string metadata.
const metadataKey = "__metadata__"

// dtypeSizes is the size in bytes of one element of each safetensors dtype.
// Only F32, BF16 and F16 can be converted to float32; the others are known
// so that files holding them still validate.
var dtypeSizes = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1,
	"U64": 8, "U32": 4, "U16": 2, "U8": 1,
	"BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}

// Tensor is one named tensor to write from float32 data. Data is
// row-major with len(Data) == product(Shape) (1 for a scalar, Shape ==
// nil). DType is "" or "F32" (written as is) or "BF16" (each value
// rounded with kernels.BF16, so a bf16 file holds exactly the weights a
// bf16 model computes with).
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []float32
}

// Info describes one tensor of a file as its header states it.
type Info struct {
	Name  string
	DType string
	Shape []int
	Begin int64 // offset of the first byte in the data buffer
	End   int64 // offset one past the last byte
}

// Numel returns the number of elements (product of Shape; 1 for a scalar).
func (i Info) Numel() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// File is an opened safetensors file. Tensor data is read on demand.
// It is safe for concurrent use if its io.ReaderAt is.
type File struct {
	r        io.ReaderAt
	closer   io.Closer
	name     string // file name for errors, "" when unknown
	dataOff  int64  // 8 + header length
	infos    map[string]Info
	names    []string // sorted
	metadata map[string]string
}

// Write writes tensors and optional metadata in safetensors format to w.
// Tensors are sorted by name and packed in that order, each in its DType.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := make([]Tensor, len(tensors))
	copy(sorted, tensors)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	header, err := encodeHeader(sorted, metadata)
	if err != nil {
		return err
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(header)))
	if _, err := w.Write(prefix[:]); err != nil {
		return fmt.Errorf("safetensors: write header length: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	buf := make([]byte, 0, 1<<16)
	for _, t := range sorted {
		bf16 := t.DType == "BF16"
		for _, v := range t.Data {
			if bf16 {
				buf = binary.LittleEndian.AppendUint16(buf, kernels.BF16(v))
			} else {
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			}
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
				}
				buf = buf[:0]
			}
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("safetensors: write tensor data: %w", err)
		}
	}
	return nil
}

// encodeHeader validates the (sorted) tensors and returns the JSON header
// padded with spaces to a multiple of 8 bytes, in the Rust library's form:
// compact JSON, "__metadata__" first, then tensors in order.
func encodeHeader(sorted []Tensor, metadata map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
		first = false
	}
	var off int64
	for i, t := range sorted {
		if t.Name == "" || t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		dtype, esize := "F32", int64(4)
		switch t.DType {
		case "", "F32":
		case "BF16":
			dtype, esize = "BF16", 2
		default:
			return nil, fmt.Errorf("safetensors: tensor %q: can only write F32 or BF16, not %q", t.Name, t.DType)
		}
		numel := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			numel *= d
		}
		if numel != len(t.Data) {
			return nil, fmt.Errorf("safetensors: tensor %q: shape %v has %d elements but data has %d", t.Name, t.Shape, numel, len(t.Data))
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"` + dtype + `","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", d)
		}
		end := off + esize*int64(numel)
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends '\n'
}

// WriteFile writes a safetensors file atomically and durably: it writes a
// temporary file in the same directory, fsyncs it, renames it over path and
// fsyncs the directory, so readers see either the old file or the new one.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	bw := newBufWriter(f)
	if err := Write(bw, tensors, metadata); err != nil {
		return fail(err)
	}
	if err := bw.flush(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes 0600
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("safetensors: write %s: sync dir: %w", path, err)
	}
	return nil
}

// bufWriter is a minimal buffered writer that reports the first error.
type bufWriter struct {
	w   io.Writer
	buf []byte
}

func newBufWriter(w io.Writer) *bufWriter { return &bufWriter{w: w, buf: make([]byte, 0, 1<<20)} }

func (b *bufWriter) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(b.buf) {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *bufWriter) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// ReadFile opens and validates the safetensors file at path. Close the File
// when done. Errors name the file.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("safetensors: %s: %w", path, err)
	}
	sf, err := read(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	sf.closer = f
	return sf, nil
}

// Read parses and validates the header of a safetensors file of the given
// size read through r. Tensor data is read later, on demand.
func Read(r io.ReaderAt, size int64) (*File, error) {
	return read(r, size, "")
}

func read(r io.ReaderAt, size int64, name string) (*File, error) {
	errf := func(format string, args ...any) error {
		if name != "" {
			return fmt.Errorf("safetensors: %s: "+format, append([]any{name}, args...)...)
		}
		return fmt.Errorf("safetensors: "+format, args...)
	}
	if size < 8 {
		return nil, errf("file is %d bytes, shorter than the 8-byte header length (truncated?)", size)
	}
	var prefix [8]byte
	if _, err := r.ReadAt(prefix[:], 0); err != nil {
		return nil, errf("read header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(prefix[:])
	if n > MaxHeaderSize {
		return nil, errf("header length %d exceeds the limit %d (not a safetensors file?)", n, MaxHeaderSize)
	}
	if n > uint64(size-8) {
		return nil, errf("header length %d exceeds the %d bytes after the length field (truncated?)", n, size-8)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, errf("read header: %v", err)
	}
	infos, names, metadata, err := parseHeader(header)
	if err != nil {
		return nil, errf("%v", err)
	}
	dataSize := size - 8 - int64(n)
	// Validate against the buffer: each tensor in range (naming the first
	// one past the end, the usual sign of truncation), then the buffer
	// indexed entirely, without holes or overlaps.
	byOff := make([]Info, 0, len(infos))
	for _, nm := range names {
		byOff = append(byOff, infos[nm])
	}
	sort.SliceStable(byOff, func(i, j int) bool {
		if byOff[i].Begin != byOff[j].Begin {
			return byOff[i].Begin < byOff[j].Begin
		}
		return byOff[i].End < byOff[j].End
	})
	for _, in := range byOff {
		if in.End > dataSize {
			return nil, errf("tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data buffer (file truncated?)", in.Name, in.Begin, in.End, dataSize)
		}
	}
	var pos int64
	for _, in := range byOff {
		if in.Begin < pos {
			return nil, errf("tensor %q: data_offsets [%d, %d] overlap the previous tensor (ends at %d)", in.Name, in.Begin, in.End, pos)
		}
		if in.Begin > pos {
			return nil, errf("tensor %q: data_offsets [%d, %d] leave a hole after byte %d", in.Name, in.Begin, in.End, pos)
		}
		pos = in.End
	}
	if pos != dataSize {
		return nil, errf("tensors cover %d bytes but the data buffer has %d (trailing bytes)", pos, dataSize)
	}
	return &File{r: r, name: name, dataOff: 8 + int64(n), infos: infos, names: names, metadata: metadata}, nil
}

// headerEntry is one tensor's JSON header entry.
type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// parseHeader decodes the JSON header, rejecting duplicate keys, unknown
// dtypes, negative or overflowing shapes and byte counts that differ from
// numel × dtype size.
func parseHeader(header []byte) (map[string]Info, []string, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, nil, errors.New("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("header is not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, nil, errors.New("header is not a JSON object")
	}
	infos := map[string]Info{}
	var names []string
	var metadata map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("header: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, nil, errors.New("header: expected a string key")
		}
		if key == metadataKey {
			if seenMeta {
				return nil, nil, nil, errors.New("header: duplicate __metadata__")
			}
			seenMeta = true
			if err := dec.Decode(&metadata); err != nil {
				return nil, nil, nil, fmt.Errorf("header: __metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		if _, dup := infos[key]; dup {
			return nil, nil, nil, fmt.Errorf("header: duplicate tensor name %q", key)
		}
		var e headerEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("header: tensor %q: %v", key, err)
		}
		in, err := e.info(key)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("header: tensor %q: %v", key, err)
		}
		infos[key] = in
		names = append(names, key)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, nil, nil, fmt.Errorf("header: %v", err)
	}
	// Only padding may follow the object.
	if strings.TrimRight(string(header[dec.InputOffset():]), " \t\r\n") != "" {
		return nil, nil, nil, errors.New("header: trailing data after the JSON object")
	}
	sort.Strings(names)
	return infos, names, metadata, nil
}

func (e headerEntry) info(name string) (Info, error) {
	size, ok := dtypeSizes[e.DType]
	if !ok {
		return Info{}, fmt.Errorf("unknown dtype %q", e.DType)
	}
	if e.Shape == nil {
		return Info{}, errors.New("missing shape")
	}
	if len(e.DataOffsets) != 2 {
		return Info{}, fmt.Errorf("data_offsets must be [begin, end], got %v", e.DataOffsets)
	}
	begin, end := e.DataOffsets[0], e.DataOffsets[1]
	if begin > end || end > math.MaxInt64 {
		return Info{}, fmt.Errorf("invalid data_offsets [%d, %d]", begin, end)
	}
	shape := make([]int, len(e.Shape))
	numel := uint64(1)
	for i, d := range e.Shape {
		if d < 0 {
			return Info{}, fmt.Errorf("negative dimension in shape %v", e.Shape)
		}
		hi, lo := bits.Mul64(numel, uint64(d))
		if hi != 0 || lo > math.MaxInt32*uint64(1<<20) {
			return Info{}, fmt.Errorf("shape %v is too large", e.Shape)
		}
		numel = lo
		shape[i] = int(d)
	}
	if want := numel * uint64(size); end-begin != want {
		return Info{}, fmt.Errorf("data_offsets [%d, %d] hold %d bytes but shape %v of %s needs %d", begin, end, end-begin, e.Shape, e.DType, want)
	}
	return Info{Name: name, DType: e.DType, Shape: shape, Begin: int64(begin), End: int64(end)}, nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Metadata returns the header's __metadata__ map (nil when absent).
func (f *File) Metadata() map[string]string { return f.metadata }

// Info returns a tensor's header entry.
func (f *File) Info(name string) (Info, bool) {
	in, ok := f.infos[name]
	if ok {
		in.Shape = append([]int(nil), in.Shape...)
	}
	return in, ok
}

// Close closes the underlying file when the File came from ReadFile.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

// Tensor reads the named tensor, converted to float32, and its shape.
func (f *File) Tensor(name string) ([]float32, []int, error) {
	in, ok := f.infos[name]
	if !ok {
		return nil, nil, f.errorf("no tensor %q", name)
	}
	dst := make([]float32, in.Numel())
	if err := f.ReadInto(name, dst); err != nil {
		return nil, nil, err
	}
	return dst, append([]int(nil), in.Shape...), nil
}

// ReadInto reads the named tensor, converted to float32, into dst, which must
// have exactly numel elements (e.g. a view of a flat parameter buffer).
func (f *File) ReadInto(name string, dst []float32) error {
	in, ok := f.infos[name]
	if !ok {
		return f.errorf("no tensor %q", name)
	}
	if len(dst) != in.Numel() {
		return f.errorf("tensor %q: shape %v has %d elements, destination has %d", name, in.Shape, in.Numel(), len(dst))
	}
	return f.readRange(in, 0, dst)
}

// ReadRangeInto reads len(dst) elements of the named tensor, from element
// off on (row-major), converted to float32: a large tensor can be read
// piece by piece.
func (f *File) ReadRangeInto(name string, off int, dst []float32) error {
	in, ok := f.infos[name]
	if !ok {
		return f.errorf("no tensor %q", name)
	}
	if off < 0 || off+len(dst) > in.Numel() {
		return f.errorf("tensor %q: elements [%d, %d) outside its %d", name, off, off+len(dst), in.Numel())
	}
	return f.readRange(in, off, dst)
}

// readRange reads elements [off, off+len(dst)) of tensor in into dst.
func (f *File) readRange(in Info, first int, dst []float32) error {
	name := in.Name
	var conv func(dst []float32, src []byte)
	esize := dtypeSizes[in.DType]
	switch in.DType {
	case "F32":
		conv = convF32
	case "BF16":
		conv = convBF16
	case "F16":
		conv = convF16
	default:
		return f.errorf("tensor %q: dtype %s is not supported (only F32, BF16, F16)", name, in.DType)
	}
	const chunk = 1 << 20 // bytes per read
	buf := make([]byte, min(chunk, max(esize, len(dst)*esize)))
	off := f.dataOff + in.Begin + int64(first*esize)
	for done := 0; done < len(dst); {
		k := min(len(dst)-done, len(buf)/esize)
		b := buf[:k*esize]
		if _, err := f.r.ReadAt(b, off); err != nil {
			return f.errorf("tensor %q: read %d bytes at %d: %v (file truncated?)", name, len(b), off, err)
		}
		conv(dst[done:done+k], b)
		off += int64(len(b))
		done += k
	}
	return nil
}

func (f *File) errorf(format string, args ...any) error {
	if f.name != "" {
		return fmt.Errorf("safetensors: %s: "+format, append([]any{f.name}, args...)...)
	}
	return fmt.Errorf("safetensors: "+format, args...)
}

func convF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func convBF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func convF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = F16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// BF16ToFloat32 converts bfloat16 bits (the top half of a float32) to float32.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16ToFloat32 converts IEEE 754 binary16 bits to float32 exactly:
// 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Exponent 0 is
// zero or a subnormal (mant × 2⁻²⁴); exponent 31 is ±Inf (mant 0) or NaN
// (the payload is kept in the top mantissa bits).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0:
		// Subnormal: normalise so that the leading 1 is at bit 10.
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 31:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}
