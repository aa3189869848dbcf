package rl

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/rljob/rljob/trainer"
	"github.com/rljob/rljob/trainer/safetensors"
)

// train_inputs.safetensors is what a light checkpoint's update trained on:
// the train rows as the stage read them (with the reference log-probs it
// computed), in its order. Every column is float32 (the format rljob's
// safetensors writes); token ids are exact in float32 below 2^24.
//
//	tokens      (sum of lengths)       prompt + completion ids, row after row
//	lengths     (rows)                 prompt + completion tokens of each row
//	starts      (rows)                 prompt tokens of each row
//	advantage   (rows)                 as the update uses it (float32)
//	policy_mask (sum of completions)   episode rows only: 1 where the token is the
//	                                   policy's (trained), 0 for observation tokens;
//	                                   a row without a mask is all 1 (the same update)
//	<per-token> (sum of trained)       one value per trained completion token: see tokenColumns
const inputsFormat = "rljob-train-inputs"

// tokenColumns are the per-completion-token columns of a train row that
// the update reads; a column absent from the file is nil in the rows (no
// TIS, no reference). A new per-token input of train adds one entry here.
var tokenColumns = []struct {
	name string
	of   func(r *trainRow) *[]float32
}{
	{"logprobs", func(r *trainRow) *[]float32 { return &r.old }},
	{"old_logprobs", func(r *trainRow) *[]float32 { return &r.behav }},
	{"ref_logprobs", func(r *trainRow) *[]float32 { return &r.ref }},
}

// maxExactToken is the first token id float32 does not hold exactly.
const maxExactToken = 1 << 24

// writeTrainInputs writes rows as train_inputs.safetensors through put.
func writeTrainInputs(put func(string, func(io.Writer) error) error, rows []trainRow) error {
	var toks, lens, starts, adv, mask []float32
	masked := false
	for i := range rows {
		masked = masked || rows[i].idx != nil
	}
	cols := make([][]float32, len(tokenColumns))
	has := make([]bool, len(tokenColumns))
	for c, col := range tokenColumns {
		has[c] = *col.of(&rows[0]) != nil
	}
	for i := range rows {
		r := &rows[i]
		for _, t := range r.tokens {
			if t >= maxExactToken {
				return fmt.Errorf("token id %d of row %d is past float32's exact integers (2^24)", t, i)
			}
			toks = append(toks, float32(t))
		}
		lens, starts, adv = append(lens, float32(len(r.tokens))), append(starts, float32(r.start)), append(adv, float32(r.adv))
		if masked {
			mask = appendMask(mask, r)
		}
		for c, col := range tokenColumns {
			v := *col.of(r)
			if (v != nil) != has[c] || v != nil && len(v) != r.completion() {
				return fmt.Errorf("row %d: column %s has %d values for %d completion tokens", i, col.name, len(v), r.completion())
			}
			cols[c] = append(cols[c], v...)
		}
	}
	ts := []safetensors.Tensor{
		{Name: "tokens", Shape: []int{len(toks)}, Data: toks},
		{Name: "lengths", Shape: []int{len(lens)}, Data: lens},
		{Name: "starts", Shape: []int{len(starts)}, Data: starts},
		{Name: "advantage", Shape: []int{len(adv)}, Data: adv},
	}
	if masked {
		ts = append(ts, safetensors.Tensor{Name: policyMaskColumn, Shape: []int{len(mask)}, Data: mask})
	}
	for c, col := range tokenColumns {
		if has[c] {
			ts = append(ts, safetensors.Tensor{Name: col.name, Shape: []int{len(cols[c])}, Data: cols[c]})
		}
	}
	meta := map[string]string{"format": inputsFormat, "rows": strconv.Itoa(len(rows))}
	return put(trainer.TrainInputsFile, func(w io.Writer) error { return safetensors.Write(w, ts, meta) })
}

// readTrainInputs reads dir/train_inputs.safetensors back into rows.
func readTrainInputs(dir string) ([]trainRow, error) {
	path := filepath.Join(dir, trainer.TrainInputsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	if f.Metadata()["format"] != inputsFormat {
		return nil, bad("not an rljob train inputs file (metadata format %q)", f.Metadata()["format"])
	}
	get := func(name string) ([]float32, error) {
		v, _, err := f.Tensor(name)
		return v, err
	}
	toks, err := get("tokens")
	if err != nil {
		return nil, err
	}
	lens, err := get("lengths")
	if err != nil {
		return nil, err
	}
	starts, err := get("starts")
	if err != nil {
		return nil, err
	}
	adv, err := get("advantage")
	if err != nil {
		return nil, err
	}
	if len(starts) != len(lens) || len(adv) != len(lens) || len(lens) == 0 {
		return nil, bad("%d lengths, %d starts, %d advantages", len(lens), len(starts), len(adv))
	}
	var mask []float32
	if _, ok := f.Info(policyMaskColumn); ok {
		if mask, err = get(policyMaskColumn); err != nil {
			return nil, err
		}
	}
	cols := make([][]float32, len(tokenColumns))
	for c, col := range tokenColumns {
		if _, ok := f.Info(col.name); ok {
			if cols[c], err = get(col.name); err != nil {
				return nil, err
			}
			if cols[c] == nil {
				cols[c] = []float32{}
			}
		}
	}
	rows := make([]trainRow, len(lens))
	at, ct, mt := 0, 0, 0
	for i := range rows {
		n, s := int(lens[i]), int(starts[i])
		if s < 1 || s > n || at+n > len(toks) {
			return nil, bad("row %d: length %d, start %d do not fit %d tokens", i, n, s, len(toks))
		}
		r := &rows[i]
		r.tokens, r.start, r.adv = make([]int32, n), s, float64(adv[i])
		for j, t := range toks[at : at+n] {
			r.tokens[j] = int32(t)
		}
		at += n
		k := n - s
		if mask != nil {
			if mt+k > len(mask) {
				return nil, bad("policy_mask is shorter than the rows' completions")
			}
			r.idx = maskIndexF(mask[mt : mt+k])
			mt, k = mt+k, len(r.idx)
		}
		for c, col := range tokenColumns {
			if cols[c] == nil {
				continue
			}
			if ct+k > len(cols[c]) {
				return nil, bad("column %s is shorter than the rows' completions", col.name)
			}
			*col.of(r) = append([]float32{}, cols[c][ct:ct+k]...)
		}
		ct += k
	}
	if at != len(toks) || mt != len(mask) {
		return nil, bad("%d tokens, the rows hold %d", len(toks), at)
	}
	return rows, nil
}

// appendMask appends row r's policy mask (1: trained) over its completion.
func appendMask(mask []float32, r *trainRow) []float32 {
	n, at := len(r.tokens)-r.start, len(mask)
	if r.idx == nil {
		for range n {
			mask = append(mask, 1)
		}
		return mask
	}
	mask = append(mask, make([]float32, n)...)
	for _, j := range r.idx {
		mask[at+int(j)] = 1
	}
	return mask
}

// maskIndexF is maskIndex of a stored float mask.
func maskIndexF(m []float32) []int32 {
	idx := make([]int32, 0, len(m))
	for k, v := range m {
		if v != 0 {
			idx = append(idx, int32(k))
		}
	}
	return idx
}
