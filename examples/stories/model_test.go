// Package stories holds the stories260K example: llama2.c's 260K-parameter
// TinyStories model in Hugging Face Llama format (model/), the project's
// first real pretrained model. The tests here check that rljob loads it as
// it is: logits, loss and greedy decoding against model/golden.json.
package stories

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer"
)

// golden is model/golden.json, computed in float32 with PyTorch from
// model.safetensors with Hugging Face Llama semantics.
type golden struct {
	SampleStoryIDs  []int32   `json:"sample_story_ids"`
	SampleStoryLoss float64   `json:"sample_story_loss_nats_per_token"`
	PromptIDs       []int32   `json:"prompt_ids"`
	PromptLogits    []float64 `json:"prompt_last_logits"`
	PromptArgmax    int       `json:"prompt_argmax"`
	GreedyIDs       []int32   `json:"greedy_from_bos_ids"`
	GreedyText      string    `json:"greedy_from_bos_text"`
}

// Tolerances. golden.json prints logits with 5 decimals (rounding error ≤
// 5e-6) and the loss with 6; the rest is float32 summation order (PyTorch's
// blocked matmuls against rljob's kernels), measured at under 1e-5 here.
const (
	logitTol = 5e-5
	lossTol  = 5e-6
)

func load(t *testing.T) (*trainer.Checkpoint, golden) {
	t.Helper()
	ck, err := trainer.LoadCheckpoint("model")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	data, err := os.ReadFile(filepath.Join("model", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return ck, g
}

// TestGoldenLogits: the next-token logits after BOS + "Once upon a time"
// equal PyTorch's, and so does the mean loss over the sample story.
func TestGoldenLogits(t *testing.T) {
	ck, g := load(t)
	m := ck.Model
	if got := append([]int32{int32(ck.Tokenizer.BOS())}, toInt32(ck.Tokenizer.Encode("Once upon a time"))...); !reflect.DeepEqual(got, g.PromptIDs) {
		t.Fatalf("prompt ids %v, want %v", got, g.PromptIDs)
	}
	T := len(g.PromptIDs)
	logits, err := m.Forward(trainer.Batch{Tokens: g.PromptIDs, Lens: []int{T}, B: 1, T: T})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	last := logits[(T-1)*V : T*V]
	var worst float64
	argmax := 0
	for v, want := range g.PromptLogits {
		worst = max(worst, math.Abs(float64(last[v])-want))
		if last[v] > last[argmax] {
			argmax = v
		}
	}
	t.Logf("max |logit - golden| = %.2g over %d logits", worst, V)
	if worst > logitTol {
		t.Errorf("max |logit - golden| = %g > %g", worst, logitTol)
	}
	if argmax != g.PromptArgmax {
		t.Errorf("argmax %d, want %d", argmax, g.PromptArgmax)
	}

	ids := g.SampleStoryIDs
	b := trainer.Batch{Tokens: ids, Lens: []int{len(ids)}, B: 1, T: len(ids)}
	loss, count, err := m.ForwardCE(b, trainer.NextTokenTargets(b, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sample story loss %.6f nats/token over %d tokens (golden %.6f)", loss, count, g.SampleStoryLoss)
	if math.Abs(float64(loss)-g.SampleStoryLoss) > lossTol || count != len(ids)-1 {
		t.Errorf("loss %.7f over %d tokens, want %.6f over %d", loss, count, g.SampleStoryLoss, len(ids)-1)
	}
}

// TestGreedyContinuation: greedy decoding from BOS reproduces the golden
// 256 tokens and their text (llama2.c's documented sample).
func TestGreedyContinuation(t *testing.T) {
	ck, g := load(t)
	want := g.GreedyIDs[1:]
	out, err := ck.Model.Generate([][]int32{{int32(ck.Tokenizer.BOS())}}, []uint64{1},
		trainer.SampleOptions{Temperature: 0, MaxNewTokens: len(want)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Tokens; !reflect.DeepEqual(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("greedy ids differ at token %d of %d", n, len(want))
	}
	text := ck.Tokenizer.Decode(toInt(out[0].Tokens))
	if text != g.GreedyText {
		t.Errorf("greedy text:\n got %q\nwant %q", text, g.GreedyText)
	}
	if !strings.HasPrefix(text, "Once upon a time, there was a little girl named Lily.") {
		t.Errorf("unexpected story start %q", text[:60])
	}
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

func toInt(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
