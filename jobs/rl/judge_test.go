package rl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/rljob/rljob/trainer"
)

// judgeJob saves 5 addition rollouts and scores them twice with the run's
// reference policy as judge: by the probability of the verdict '1' against
// '2' after the template, and by the first character of its greedy
// continuation (regex), right when it is '3'.
const judgeJob = `
CREATE OR REPLACE TABLE samples AS
SELECT 'p' || i || '/' || getvariable('step') AS rollout_id, 'p' || i AS prompt_id, 0 AS sample_idx,
       CAST(i AS VARCHAR) || '+' || CAST(i AS VARCHAR) || '=' AS prompt, CAST(2 * i AS VARCHAR) AS completion,
       CAST(2 * i AS VARCHAR) AS answer
FROM range(5) t(i);
CALL save(source := 'samples', output := 'rollouts');
CALL reward(verifier := 'model', judge := 'ref', template := '{prompt}{completion}=', verdict := '1', against := '2');
CALL reward(verifier := 'model', judge := 'ref', name := 'model_gen', mode := 'generate', template := '{prompt}{completion}=',
            parse := 'regex', pattern := '^(.)', verdict := '3', max_new_tokens := 2);
`

// TestModelJudge checks both modes against the judge computed here, one
// row at a time: logprob: reward = P('1') / (P('1') + P('2')) after the
// filled template; generate: the extracted character is the first of the
// greedy continuation, correct when it is '3'.
func TestModelJudge(t *testing.T) {
	lake, config := testLake(t)
	mustRun(t, lake, config, initJob, runOpt{})
	mustRun(t, lake, config, judgeJob, runOpt{})

	ck, err := trainer.LoadCheckpoint(ckDir(t, lake, "r", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Model.Release()
	tok := ck.Tokenizer
	logP := func(prompt []int32, v string) float64 {
		seq := append(append([]int32{}, prompt...), encodePrompt(-1, tok.Encode(v))...)
		b := trainer.Batch{Tokens: seq, Lens: []int{len(seq)}, B: 1, T: len(seq)}
		lp, _, err := ck.Model.ForwardLogp(b, trainer.NextTokenTargets(b, []int{len(prompt)}), 1, false)
		if err != nil {
			t.Fatal(err)
		}
		return float64(lp[len(seq)-2])
	}
	rows := query(t, lake, `SELECT rollout_id, verifier, reward, correct, extracted FROM rewards ORDER BY verifier, rollout_id`)
	if len(rows) != 10 {
		t.Fatalf("rewards: %v, want 10 rows", rows)
	}
	var distinct = map[string]bool{}
	for i := range 5 {
		prompt := encodePrompt(tok.BOS(), tok.Encode(fmt.Sprintf("%d+%d=%d=", i, i, 2*i)))
		// logprob mode, verifier 'model:ref'
		f := strings.Split(rows[i], "|")
		want := 1 / (1 + math.Exp(logP(prompt, "2")-logP(prompt, "1")))
		got, _ := strconv.ParseFloat(f[2], 64)
		if f[0] != fmt.Sprintf("p%d/1", i) || f[1] != "model:ref" || math.Abs(got-want) > 1e-6 || f[3] != strconv.FormatBool(got >= 0.5) || !strings.HasPrefix(f[4], "p=") {
			t.Errorf("logprob row %q: want reward %.6g", rows[i], want)
		}
		distinct[f[2]] = true
		// generate mode, verifier 'model_gen'
		g := strings.Split(rows[5+i], "|")
		s, err := ck.Model.Generate([][]int32{prompt}, []uint64{0}, trainer.SampleOptions{MaxNewTokens: 2, StopTokens: []int{tok.EOS()}})
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		if ids := s[0].Tokens; len(ids) > 0 && int(ids[0]) != tok.EOS() {
			first = tok.Decode([]int{int(ids[0])})
		}
		if g[1] != "model_gen" || g[4] != first || g[3] != strconv.FormatBool(first == "3") {
			t.Errorf("generate row %q: want extracted %q", rows[5+i], first)
		}
	}
	if len(distinct) < 2 {
		t.Errorf("the judge gave every row the same reward: %v", rows[:5])
	}
}

// TestModelJudgeBadJudge: a judge that names no checkpoint is an error at
// the argument, and nothing is committed.
func TestModelJudgeBadJudge(t *testing.T) {
	lake, config := testLake(t)
	call := "CALL reward(verifier := 'model', judge := '%s', rollouts := 'SELECT ''a'' AS rollout_id, ''x'' AS completion, ''y'' AS answer');\n"
	for _, tc := range []struct{ judge, want string }{
		{"ref", `judge := 'ref': run "r" has no checkpoint`},
		{"run=nosuch", `judge := 'run=nosuch': run "nosuch" has no such checkpoint`},
		{"no/such/folder", "no checkpoint at"},
	} {
		_, err := runJob(t, lake, config, fmt.Sprintf(call, tc.judge), runOpt{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("judge %q: %v, want %q", tc.judge, err, tc.want)
		}
	}
	if got := query(t, lake, "SELECT count(*) FROM rewards"); got[0] != "0" {
		t.Errorf("rewards committed: %v", got)
	}
}
