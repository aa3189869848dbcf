package report

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
)

// pageData writes r as HTML and reads the report back from the page's JSON.
func pageData(t *testing.T, r *Report) (string, *Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="` + DataElementID + `">(.*?)</script>`).FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no embedded data element")
	}
	var got Report
	if err := json.Unmarshal([]byte(m[1]), &got); err != nil {
		t.Fatalf("embedded data: %v", err)
	}
	return html, &got
}

func panelByID(r *Report, id string) *Panel {
	for _, p := range r.Panels {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// TestReportPage: the interactive page of the synthetic lake carries every
// metric of the lake, grouped (key charts, eval, then prefixes), constant
// ones collapsed, eval against the checkpoint, pass@k against k, the x axes,
// the run table and the samples — as the page's JSON, with uPlot inline and
// nothing fetched from the network.
func TestReportPage(t *testing.T) {
	r, err := buildReport(t, syntheticLake(t), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	html, got := pageData(t, r)
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(html); m != "" {
		t.Errorf("HTML loads from the network: %s", m)
	}
	for _, want := range []string{"uPlot", "Leon Sorokin", "rljobReport", `"image":"data:image/png;base64,`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}

	var order []string
	for _, p := range got.Panels {
		order = append(order, p.Group+":"+p.ID)
	}
	want := "key charts:reward key charts:entropy key charts:kl key charts:clipfrac key charts:grad_norm key charts:response_length " +
		"key charts:groups_kept key charts:curriculum-a key charts:curriculum-b eval:eval-arith-pass1 eval:eval-arith-passk " +
		"eval:m-val-arith-pass-4 train:m-train-reward-mean" // b's reward (the reward panel's fallback) drawn in its group too
	if strings.Join(order, " ") != want {
		t.Errorf("panels\n %s\nwant\n %s", strings.Join(order, " "), want)
	}
	// Every metric of the lake is in the page's series.
	for run, names := range map[string][]string{
		"a": {"actor/entropy", "actor/kl_loss", "actor/ppo_kl", "actor/pg_clipfrac", "actor/grad_norm", "response_length/mean",
			"train/groups_kept", "val/arith/pass@1", "val/arith/pass@4", "val/arith/policy_step", RewardSeries},
		"b": {"actor/entropy", "train/reward_mean"},
	} {
		if len(got.Series[run]) != len(names) {
			t.Errorf("run %s: %d series, want %d", run, len(got.Series[run]), len(names))
		}
		for _, n := range names {
			if got.Series[run][n] == nil {
				t.Errorf("run %s: no series %s", run, n)
			}
		}
	}
	if l := got.Series["a"]["val/arith/pass@1"]; !near(l.X, []float64{0, trainSteps}) || !near(l.Y, []float64{0.4, 0.7}) {
		t.Errorf("eval pass@1 of a against checkpoint: %v %v", l.X, l.Y)
	}
	if l := got.Series["a"][RewardSeries]; l.N != trainSteps || !near(l.Y, []float64{0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375, 0.375}) {
		t.Errorf("scored reward of a: %+v", l)
	}
	// train/groups_kept is 0.75 at every step: one line, no chart.
	if p := panelByID(got, "groups_kept"); p == nil || !strings.Contains(p.Flat, "train/groups_kept = 0.75 at every point (a 10 points)") {
		t.Errorf("groups_kept panel: %+v", p)
	}
	if p := panelByID(got, "kl"); p == nil || p.Flat != "" {
		t.Errorf("kl panel (ppo_kl varies) collapsed: %+v", p)
	}
	pk := panelByID(got, "eval-arith-passk")
	if pk == nil || len(pk.PassK) != 2 || pk.PassK[1].Ckpt != trainSteps || !near(pk.PassK[1].K, []float64{1, 4}) || !near(pk.PassK[1].Y, []float64{0.7, 0.9}) {
		t.Errorf("pass@k panel: %+v", pk)
	}
	if p := panelByID(got, "curriculum-a"); p == nil || !strings.HasPrefix(p.Image, "data:image/png;base64,") {
		t.Error("curriculum heat map not embedded")
	}

	// x axes of a: 16 train rollouts of 3 tokens per step; wall time from
	// the metrics' created_at, non-decreasing. b has no rollouts.
	ax := got.Axes["a"]
	if len(ax.Step) != trainSteps+2 || ax.Rollouts[1] != 16 || ax.Rollouts[trainSteps] != 16*trainSteps || ax.Tokens[trainSteps] != 48*trainSteps {
		t.Errorf("axes of a: %+v", ax)
	}
	for i := 1; i < len(ax.WallS); i++ {
		if ax.WallS[i] < ax.WallS[i-1] {
			t.Errorf("wall time decreases: %v", ax.WallS)
		}
	}
	if got.Axes["b"].Rollouts != nil || got.Axes["b"].WallS == nil {
		t.Errorf("axes of b: %+v", got.Axes["b"])
	}

	// Run table: key metrics with first / last / best.
	if len(got.RunTable) != 2 || got.RunTable[0].Run != "a" || got.RunTable[0].Steps != trainSteps+2 {
		t.Fatalf("run table: %+v", got.RunTable)
	}
	var pass1 *KeyMetric
	for i, k := range got.RunTable[0].Key {
		if k.Name == "val/arith/pass@1" {
			pass1 = &got.RunTable[0].Key[i]
		}
	}
	if pass1 == nil || pass1.First != 0.4 || pass1.Last != 0.7 || pass1.Best != 0.7 || pass1.BestStep != trainSteps || pass1.BestOf != "max" {
		t.Errorf("pass@1 summary of a: %+v", pass1)
	}

	// Samples: a's first and latest step, 16 each; GRPO advantage of p2
	// (rewards 1, 1, 0, 0): ±0.5 / sample std 0.57735.
	if len(got.Samples) != 32 || got.Samples[0].Step != 1 || got.Samples[31].Step != trainSteps {
		t.Fatalf("samples: %d, steps %d..%d", len(got.Samples), got.Samples[0].Step, got.Samples[len(got.Samples)-1].Step)
	}
	for _, s := range got.Samples[:16] {
		if s.PromptID == "p2" && s.SampleIdx == 0 && (s.Advantage == nil || math.Abs(*s.Advantage-0.5/math.Sqrt(1.0/3)) > 1e-5 || *s.Reward != 1 || s.Verifier != "exact") {
			t.Errorf("sample p2/0: %+v adv %v", s, *s.Advantage)
		}
		if s.PromptID == "p0" && (s.Advantage == nil || *s.Advantage != 0) {
			t.Errorf("sample p0 (all wrong): advantage %v, want 0", s.Advantage)
		}
	}
}

// TestReportChosenPrompts: --prompt adds a prompt's samples at every step;
// an unknown prompt id is named in the page's message.
func TestReportChosenPrompts(t *testing.T) {
	r, err := buildReportPrompts(t, syntheticLake(t), []string{"a"}, "p3", "nosuch")
	if err != nil {
		t.Fatal(err)
	}
	chosen, ends := 0, 0
	for _, s := range r.Samples {
		if s.Chosen {
			chosen++
			if s.PromptID != "p3" {
				t.Errorf("sample of %s marked chosen", s.PromptID)
			}
		}
		if s.Step == 1 || s.Step == trainSteps {
			ends++
		}
	}
	if chosen != 4*trainSteps || ends != 32 || len(r.Samples) != 32+4*(trainSteps-2) {
		t.Errorf("%d samples: %d chosen (want %d), %d at the first and latest step (want 32)", len(r.Samples), chosen, 4*trainSteps, ends)
	}
	if !strings.Contains(r.Message, "prompt nosuch has no train rollouts in run a") {
		t.Errorf("message %q", r.Message)
	}
}

// TestReportMessagePage: the page for an unknown run has no panels and
// says why.
func TestReportMessagePage(t *testing.T) {
	html, got := pageData(t, MessageReport("/tmp/lake", []string{"x"}, `run "x" has no metrics and no rollouts in lake /tmp/lake (runs with data: none)`))
	if len(got.Panels) != 0 || !strings.Contains(html, `<p class="message" id="message">run &#34;x&#34; has no metrics`) {
		t.Errorf("message page: %d panels\n%.600s", len(got.Panels), html)
	}
}

// TestVariedKeys: the run table highlights the arguments (and the seed)
// that differ between runs, including one only some runs have.
func TestVariedKeys(t *testing.T) {
	runs := []*RunInfo{
		{Run: "lr1", Seed: "1", Config: map[string]string{"train[3].lr": "1e-6", "rollout[1].n": "8"}},
		{Run: "lr2", Seed: "1", Config: map[string]string{"train[3].lr": "3e-6", "rollout[1].n": "8"}},
		{Run: "lr3", Seed: "2", Config: map[string]string{"train[3].lr": "1e-5", "rollout[1].n": "8", "eval[5].k": "4"}},
	}
	if got := strings.Join(variedKeys(runs), ","); got != "eval[5].k,seed,train[3].lr" {
		t.Errorf("varied %s", got)
	}
}
