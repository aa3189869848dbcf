package report

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strings"

	rsql "github.com/rljob/rljob/sql"
)

// Sample is one scored train rollout of the samples table. Advantage is
// the GRPO advantage recomputed over the rollout's prompt group in its step
// ((r − mean) / (sample std + 1e-6); a group of one keeps its reward, as
// grpo_advantages does): the lake stores rewards, not the advantages a job
// computed.
type Sample struct {
	Run        string   `json:"run"`
	Step       int64    `json:"step"`
	PromptID   string   `json:"prompt_id"`
	SampleIdx  int64    `json:"sample_idx"`
	Prompt     string   `json:"prompt"`
	Completion string   `json:"completion"`
	Reward     *float64 `json:"reward"`
	Advantage  *float64 `json:"advantage"`
	Correct    *bool    `json:"correct"`
	Verifier   string   `json:"verifier"`
	Finish     string   `json:"finish_reason"`
	Chosen     bool     `json:"chosen,omitempty"` // a prompt named with --prompt
}

// Sample bounds: rollouts per (run, step) and characters per text, so a
// large step does not bloat the page.
// MaxChosenSamples bounds the samples of the chosen prompts per run.
const (
	MaxSamplesPerStep = 128
	MaxChosenSamples  = 2048
	maxSampleText     = 4000
)

// samplesQuery selects the train rollouts of each run's first and latest
// step with train rollouts, and those of the chosen prompts (%[2]s, a SQL
// list) at every step.
const samplesQuery = `WITH s AS (
    SELECT *, prompt_id IN %[2]s AS chosen FROM scored_all WHERE run IN %[1]s AND tag = 'train'
), lim AS (
    SELECT run, min(step) AS lo, max(step) AS hi FROM s GROUP BY run
), a AS (
    SELECT s.run, s.step, s.prompt_id, s.sample_idx::BIGINT AS sample_idx, s.prompt, s.completion, s.reward,
           CASE WHEN count(*) OVER g < 2 THEN s.reward
                ELSE (s.reward - avg(s.reward) OVER g) / (coalesce(stddev_samp(s.reward) OVER g, 0) + 1e-6) END AS advantage,
           s.correct, s.verifier, s.finish_reason, s.chosen, s.step = lim.lo OR s.step = lim.hi AS ends
    FROM s JOIN lim ON s.run = lim.run
    WINDOW g AS (PARTITION BY s.run, s.step, s.prompt_id, s.verifier)
)
SELECT * EXCLUDE (ends) FROM a WHERE ends OR chosen
QUALIFY (ends AND row_number() OVER (PARTITION BY run, step, ends ORDER BY prompt_id, sample_idx, verifier) <= %[3]d)
     OR (chosen AND row_number() OVER (PARTITION BY run, chosen ORDER BY step, prompt_id, sample_idx, verifier) <= %[4]d)
ORDER BY run, step, prompt_id, sample_idx, verifier`

// loadSamples fills r.Samples.
func (r *Report) loadSamples(ctx context.Context, eng *rsql.Engine, prompts []string) error {
	chosen := "(NULL)"
	if len(prompts) > 0 {
		chosen = runList(prompts)
	}
	q := fmt.Sprintf(samplesQuery, runList(r.Runs), chosen, MaxSamplesPerStep, MaxChosenSamples)
	return query(ctx, eng, "samples", q, func(s *stdsql.Rows) error {
		var x Sample
		var prompt, completion, verifier, finish, pid stdsql.NullString
		var reward, adv stdsql.NullFloat64
		var correct stdsql.NullBool
		var isChosen stdsql.NullBool
		if err := s.Scan(&x.Run, &x.Step, &pid, &x.SampleIdx, &prompt, &completion, &reward, &adv, &correct, &verifier, &finish, &isChosen); err != nil {
			return err
		}
		x.PromptID, x.Prompt, x.Completion = pid.String, clip(prompt.String), clip(completion.String)
		x.Verifier, x.Finish, x.Chosen = verifier.String, finish.String, isChosen.Bool
		if reward.Valid {
			x.Reward = &reward.Float64
		}
		if adv.Valid {
			x.Advantage = &adv.Float64
		}
		if correct.Valid {
			x.Correct = &correct.Bool
		}
		r.Samples = append(r.Samples, x)
		return nil
	})
}

func clip(s string) string {
	if len(s) <= maxSampleText {
		return s
	}
	return strings.ToValidUTF8(s[:maxSampleText], "") + fmt.Sprintf(" … [%d more bytes]", len(s)-maxSampleText)
}

// loadExtras reads what the interactive page adds to the charts: x axes,
// run table, samples, and the message for runs without metrics.
func (r *Report) loadExtras(ctx context.Context, eng *rsql.Engine, md metricData, prompts []string) error {
	if err := r.loadAxes(ctx, eng); err != nil {
		return err
	}
	if err := r.loadRunTable(ctx, eng, md); err != nil {
		return err
	}
	if err := r.loadSamples(ctx, eng, prompts); err != nil {
		return err
	}
	var missing []string
	for _, p := range prompts {
		found := false
		for _, s := range r.Samples {
			found = found || (s.Chosen && s.PromptID == p)
		}
		if !found {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		r.Message = strings.TrimSpace(r.Message + " " + fmt.Sprintf("prompt %s has no train rollouts in run %s (check --prompt; prompt ids are in the samples table)", strings.Join(missing, ", "), strings.Join(r.Runs, ", ")))
	}
	var bare []string
	for _, run := range r.Runs {
		if len(md[run]) == 0 {
			bare = append(bare, run)
		}
	}
	if len(bare) > 0 {
		r.Message = fmt.Sprintf("run %s has no metrics in the metrics table (only rollouts): its charts hold the reward from scored and the curriculum only", strings.Join(bare, ", "))
	}
	return nil
}

func sprintfRuns(q string, runs []string) string { return fmt.Sprintf(q, runList(runs)) }
