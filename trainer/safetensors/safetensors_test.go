package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// rawFile builds a safetensors file from a literal JSON header (padded with
// spaces to a multiple of 8 as the Python library does) and raw data bytes.
func rawFile(t *testing.T, header string, data []byte) []byte {
	t.Helper()
	for len(header)%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func u16s(vs ...uint16) []byte {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	tensors := []Tensor{
		{Name: "model.layers.0.mlp.up_proj.weight", Shape: []int{3, 2}, Data: []float32{1, -2, 3.5, float32(math.Inf(1)), 1e-40, -0}},
		{Name: "lm_head.weight", Shape: []int{2}, Data: []float32{0.25, -7}},
		{Name: "scalar", Shape: nil, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: nil},
	}
	meta := map[string]string{"format": "pt", "note": "quotes \" and <html> & ünïcode"}
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	// The exact header the Rust/Python library writes for these tensors:
	// metadata first, tensors sorted by name, packed in that order.
	wantHeader := `{"__metadata__":{"format":"pt","note":"quotes \" and <html> & ünïcode"},` +
		`"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},` +
		`"lm_head.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"model.layers.0.mlp.up_proj.weight":{"dtype":"F32","shape":[3,2],"data_offsets":[8,32]},` +
		`"scalar":{"dtype":"F32","shape":[],"data_offsets":[32,36]}}`
	if got := strings.TrimRight(string(raw[8:8+n]), " "); got != wantHeader {
		t.Errorf("header:\n got %s\nwant %s", got, wantHeader)
	}
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Names(), []string{"empty", "lm_head.weight", "model.layers.0.mlp.up_proj.weight", "scalar"}; !reflect.DeepEqual(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	if !reflect.DeepEqual(f.Metadata(), meta) {
		t.Errorf("metadata %v, want %v", f.Metadata(), meta)
	}
	for _, want := range tensors {
		data, shape, err := f.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(shape) != len(want.Shape) || (len(shape) > 0 && !reflect.DeepEqual(shape, want.Shape)) {
			t.Errorf("%s: shape %v, want %v", want.Name, shape, want.Shape)
		}
		if len(data) != len(want.Data) {
			t.Fatalf("%s: %d elements, want %d", want.Name, len(data), len(want.Data))
		}
		for i := range data {
			if math.Float32bits(data[i]) != math.Float32bits(want.Data[i]) {
				t.Errorf("%s[%d] = %v, want %v (bitwise)", want.Name, i, data[i], want.Data[i])
			}
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	big := make([]float32, 300_000) // several 64 KiB write chunks
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	if err := WriteFile(path, []Tensor{{Name: "w", Shape: []int{600, 500}, Data: big}}, nil); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file (temp file left behind?)", len(entries))
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dst := make([]float32, len(big))
	if err := f.ReadInto("w", dst); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dst, big) {
		t.Error("data differs after WriteFile/ReadFile")
	}
	if err := f.ReadInto("w", dst[:10]); err == nil {
		t.Error("ReadInto with a wrong-size destination: no error")
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{{Name: "a", Shape: []int{1}, Data: []float32{1}}, {Name: "a", Shape: []int{1}, Data: []float32{2}}}, "duplicate"},
		{"shape mismatch", []Tensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1}}}, "4 elements"},
		{"dtype", []Tensor{{Name: "a", DType: "F16", Shape: []int{1}, Data: []float32{1}}}, "can only write F32 or BF16"},
		{"empty name", []Tensor{{Name: "", Shape: []int{1}, Data: []float32{1}}}, "invalid tensor name"},
		{"reserved name", []Tensor{{Name: "__metadata__", Shape: []int{1}, Data: []float32{1}}}, "invalid tensor name"},
		{"negative dim", []Tensor{{Name: "a", Shape: []int{-1, -1}, Data: []float32{1}}}, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestHalfConversions checks BF16 and F16 decoding against hand-written bit
// patterns, including F16 subnormals, infinities and NaN.
func TestHalfConversions(t *testing.T) {
	f16 := []struct {
		bits uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},            // nearest f16 to 1/3
		{0x7bff, 65504},                     // largest normal
		{0x0400, 6.103515625e-05},           // smallest normal 2^-14
		{0x0001, 5.960464477539063e-08},     // smallest subnormal 2^-24
		{0x03ff, 6.097555160522461e-05},     // largest subnormal 1023·2^-24
		{0x8200, -3.0517578125e-05},         // negative subnormal -2^-15
		{0x7c00, float32(math.Inf(1))},      // +Inf
		{0xfc00, float32(math.Inf(-1))},     // -Inf
		{0x3bff, 0.99951171875},             // largest below 1
		{0x5640, 100},                       // 100
		{0x2e66, 0.0999755859375},           // nearest f16 to 0.1
		{0xd2a4, -53.125},                   // -53.125
		{0x0155, 2.0325183868408203125e-05}, // subnormal 341·2^-24
	}
	for _, tc := range f16 {
		if got := F16ToFloat32(tc.bits); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("F16ToFloat32(%#04x) = %v (%#08x), want %v (%#08x)", tc.bits, got, math.Float32bits(got), tc.want, math.Float32bits(tc.want))
		}
	}
	if got := F16ToFloat32(0x8000); math.Float32bits(got) != 0x80000000 {
		t.Errorf("F16ToFloat32(0x8000) = %#08x, want -0 (0x80000000)", math.Float32bits(got))
	}
	for _, nan := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		got := F16ToFloat32(nan)
		if !math.IsNaN(float64(got)) {
			t.Errorf("F16ToFloat32(%#04x) = %v, want NaN", nan, got)
		}
		if want := uint32(nan&0x8000)<<16 | 0x7f800000 | uint32(nan&0x3ff)<<13; math.Float32bits(got) != want {
			t.Errorf("F16ToFloat32(%#04x) = %#08x, want payload-preserving %#08x", nan, math.Float32bits(got), want)
		}
	}
	bf16 := []struct {
		bits uint16
		want float32
	}{
		{0x0000, 0},
		{0x3f80, 1},
		{0xc040, -3},
		{0x3eab, 0.333984375},
		{0x7f7f, 3.3895313892515355e38},  // largest finite
		{0x0080, 1.1754943508222875e-38}, // smallest normal
		{0x0001, 9.183549615799121e-41},  // smallest subnormal
		{0x7f80, float32(math.Inf(1))},
		{0xff80, float32(math.Inf(-1))},
	}
	for _, tc := range bf16 {
		if got := BF16ToFloat32(tc.bits); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("BF16ToFloat32(%#04x) = %v, want %v", tc.bits, got, tc.want)
		}
	}
	if !math.IsNaN(float64(BF16ToFloat32(0x7fc0))) {
		t.Error("BF16ToFloat32(0x7fc0) is not NaN")
	}

	// The same patterns through a file.
	raw := rawFile(t, `{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]}}`,
		append(u16s(0x3c00, 0x0001, 0xfc00, 0xc000), u16s(0x3f80, 0xc040, 0x0080)...))
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	a, shape, err := f.Tensor("a")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 5.960464477539063e-08, float32(math.Inf(-1)), -2}; !reflect.DeepEqual(a, want) || !reflect.DeepEqual(shape, []int{2, 2}) {
		t.Errorf("F16 tensor %v %v, want %v [2 2]", a, shape, want)
	}
	b, _, err := f.Tensor("b")
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, -3, 1.1754943508222875e-38}; !reflect.DeepEqual(b, want) {
		t.Errorf("BF16 tensor %v, want %v", b, want)
	}
}

func TestReadErrors(t *testing.T) {
	f32x4 := make([]byte, 16)
	good := rawFile(t, `{"a.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b.weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, f32x4)
	cases := []struct {
		name string
		file []byte
		want string // substring of the error
	}{
		{"empty file", nil, "shorter than the 8-byte"},
		{"short length", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"header too long for file", good[:40], "exceeds the"},
		{"huge header length", append(binary.LittleEndian.AppendUint64(nil, 1<<60), good[8:]...), "exceeds the limit"},
		{"truncated data names tensor", good[:len(good)-4], `"b.weight"`},
		{"truncated data says truncated", good[:len(good)-4], "truncated"},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0, 0, 0), "trailing bytes"},
		{"not json", rawFile(t, `not json`, nil), "not JSON"},
		{"not an object", rawFile(t, `[1,2]`, nil), "not a JSON object"},
		{"broken json", rawFile(t, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, f32x4[:4]), "header"},
		{"trailing garbage", rawFile(t, `{} x`, nil), "trailing data"},
		{"duplicate name", rawFile(t, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32x4[:8]), "duplicate tensor name"},
		{"unknown dtype", rawFile(t, `{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, f32x4), "unknown dtype"},
		{"byte count", rawFile(t, `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32x4[:8]), "needs 12"},
		{"negative dim", rawFile(t, `{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32x4[:4]), "negative"},
		{"fractional dim", rawFile(t, `{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, f32x4[:4]), `tensor "a"`},
		{"overflowing shape", rawFile(t, `{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f32x4[:4]), "too large"},
		{"missing shape", rawFile(t, `{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f32x4[:4]), "missing shape"},
		{"bad offsets arity", rawFile(t, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, f32x4[:4]), "data_offsets must be"},
		{"reversed offsets", rawFile(t, `{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, f32x4[:4]), "invalid data_offsets"},
		{"overlap", rawFile(t, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32x4[:12]), "overlap"},
		{"hole", rawFile(t, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32x4[:12]), "hole"},
		{"metadata not strings", rawFile(t, `{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"invalid utf8", rawFile(t, "{\"\xff\":1}", nil), "UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.file), int64(len(tc.file)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadFileErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := WriteFile(path, []Tensor{{Name: "w", Shape: []int{4}, Data: []float32{1, 2, 3, 4}}}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if err := os.WriteFile(path, raw[:len(raw)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("error %v, want one naming %s and tensor \"w\"", err, path)
	}
}

func TestUnsupportedDTypeValidatesButCannotConvert(t *testing.T) {
	raw := rawFile(t, `{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}`, make([]byte, 16))
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := f.Info("ids"); !ok || in.DType != "I64" {
		t.Errorf("Info = %+v, %v", in, ok)
	}
	if _, _, err := f.Tensor("ids"); err == nil || !strings.Contains(err.Error(), "I64 is not supported") {
		t.Errorf("error %v, want unsupported dtype", err)
	}
	if _, _, err := f.Tensor("nope"); err == nil || !strings.Contains(err.Error(), `no tensor "nope"`) {
		t.Errorf("error %v, want missing tensor", err)
	}
}

// FuzzRead checks that Read never panics and that whatever it accepts can
// be read back tensor by tensor.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	_ = Write(&buf, []Tensor{{Name: "a", Shape: []int{2}, Data: []float32{1, 2}}, {Name: "b", Shape: []int{1, 1}, Data: []float32{3}}}, map[string]string{"format": "pt"})
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Add(append(binary.LittleEndian.AppendUint64(nil, 56), []byte(`{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}  `+"\x00\x3c")...))
	f.Add(append(binary.LittleEndian.AppendUint64(nil, 56), []byte(`{"h":{"dtype":"BF16","shape":[],"data_offsets":[0,2]}} `+"\x80\x3f")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, name := range sf.Names() {
			in, _ := sf.Info(name)
			got, _, err := sf.Tensor(name)
			if err != nil {
				if in.DType == "F32" || in.DType == "F16" || in.DType == "BF16" {
					t.Errorf("tensor %q (%s) validated but failed to read: %v", name, in.DType, err)
				}
				continue
			}
			if len(got) != in.Numel() {
				t.Errorf("tensor %q: %d elements, want %d", name, len(got), in.Numel())
			}
		}
	})
}

// TestWriteBF16: a BF16 tensor is written with its dtype and 2-byte
// offsets beside an F32 one, its values rounded to nearest even
// (subnormals to ±0), and reads back as those rounded values.
func TestWriteBF16(t *testing.T) {
	vals := []float32{1, math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), -2.5, 1e-40, 3.14159}
	want := []float32{1, 1, math.Float32frombits(0x3f820000), -2.5, 0, math.Float32frombits(0x40490000)}
	var buf bytes.Buffer
	if err := Write(&buf, []Tensor{{Name: "b", DType: "BF16", Shape: []int{2, 3}, Data: vals}, {Name: "f", Shape: []int{1}, Data: []float32{7}}}, nil); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	n := binary.LittleEndian.Uint64(raw)
	wantHeader := `{"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"f":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}`
	if got := strings.TrimRight(string(raw[8:8+n]), " "); got != wantHeader {
		t.Errorf("header:\n got %s\nwant %s", got, wantHeader)
	}
	f, err := Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := f.Tensor("b")
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("b[%d] = %v (%#x), want %v", i, got[i], math.Float32bits(got[i]), want[i])
		}
	}
}

// TestReadRangeInto: a piece of a tensor reads as the same elements of the
// whole (F32 and BF16), and a range past its end is an error.
func TestReadRangeInto(t *testing.T) {
	data := make([]float32, 30)
	for i := range data {
		data[i] = float32(i) - 7.5
	}
	var buf bytes.Buffer
	if err := Write(&buf, []Tensor{{Name: "a", Shape: []int{5, 6}, Data: data}, {Name: "b", DType: "BF16", Shape: []int{30}, Data: data}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		got := make([]float32, 12)
		if err := f.ReadRangeInto(name, 12, got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, data[12:24]) {
			t.Errorf("%s[12:24] = %v, want %v", name, got, data[12:24])
		}
		if err := f.ReadRangeInto(name, 25, got); err == nil {
			t.Errorf("%s: range past the end read without error", name)
		}
	}
}
