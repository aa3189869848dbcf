package stories

import (
	"context"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rljob/rljob/jobs"
	_ "github.com/rljob/rljob/jobs/rl" // the RL stages
	rsql "github.com/rljob/rljob/sql"
	"github.com/rljob/rljob/trainer"
)

// TestStoriesJob runs one step of stories.sql on a fresh lake and checks
// what it wrote: the pretrained model as the first checkpoint (its greedy
// continuation is still the golden one), 8 × 8 rollouts whose prompt
// tokens are [BOS] + encode(prompt), rewards that follow the regex rule,
// and the logged mean reward.
func TestStoriesJob(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: one GRPO step of the stories260K example (about 20 s)")
	}
	lake := filepath.Join(t.TempDir(), "lake")
	_, err := jobs.Run(context.Background(), jobs.Options{JobFile: "stories.sql", Lake: lake, Run: "stories", Steps: 1, Seed: 1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}

	// The first checkpoint is the model as it is.
	ck, g := load(t)
	first, err := trainer.LoadCheckpoint(filepath.Join(lake, "checkpoints", "run=stories", "step=0", "part-0-0"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first.Model.Params, ck.Model.Params) {
		t.Error("init_policy's checkpoint differs from model/")
	}
	out, err := first.Model.Generate([][]int32{{1}}, []uint64{1}, trainer.SampleOptions{MaxNewTokens: 20})
	if err != nil || !reflect.DeepEqual(out[0].Tokens, g.GreedyIDs[1:21]) {
		t.Errorf("greedy from the checkpoint: %v, %v; want %v", out, err, g.GreedyIDs[1:21])
	}

	rows := queryLake(t, lake, `SELECT prompt, CAST(prompt_tokens AS VARCHAR), reward, coalesce(extracted, ''), answer FROM scored ORDER BY prompt_id, sample_idx`)
	if len(rows) != 64 {
		t.Fatalf("%d scored rollouts, want 64", len(rows))
	}
	var sum float64
	for _, r := range rows {
		prompt, ids, reward, extracted, answer := r[0], r[1], r[2], r[3], r[4]
		want := []string{"1"}
		for _, id := range ck.Tokenizer.Encode(prompt) {
			want = append(want, strconv.Itoa(id))
		}
		if ids != "["+strings.Join(want, ", ")+"]" {
			t.Errorf("prompt %q: tokens %s, want [%s]", prompt, ids, strings.Join(want, ", "))
		}
		v, err := strconv.ParseFloat(reward, 64)
		if err != nil || (v == 1) != (extracted == answer) || (v != 0 && v != 1) {
			t.Errorf("prompt %q: reward %s with extracted %q, answer %q", prompt, reward, extracted, answer)
		}
		sum += v
	}
	got := queryLake(t, lake, `SELECT value FROM metrics WHERE name = 'train/reward_mean'`)
	if len(got) != 1 {
		t.Fatalf("train/reward_mean rows %v, want one", got)
	}
	if v, err := strconv.ParseFloat(got[0][0], 64); err != nil || v != sum/64 {
		t.Errorf("train/reward_mean %v, want %g", got, sum/64)
	}
}

// queryLake runs q over the lake and returns each row's cells as text.
func queryLake(t *testing.T, lake, q string) [][]string {
	t.Helper()
	ctx := context.Background()
	e, err := rsql.Open(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rr, err := e.QueryArrow(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rr.Release()
	var out [][]string
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			var cells []string
			for c := 0; c < int(rec.NumCols()); c++ {
				cells = append(cells, strings.Clone(rec.Column(c).ValueStr(i)))
			}
			out = append(out, cells)
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
