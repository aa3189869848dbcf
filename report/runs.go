package report

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// RunInfo is one row of the run table: what a run was configured with (the
// calls table's evaluated stage arguments of its latest step, keyed
// "stage[call].argument"; the job files, their sha256 and the rljob
// version of its step markers; the seed its stages committed with; the
// device and dtype arguments when a stage was given them) and the first,
// last and best values of its key metrics. --set values show where the job
// passes them to a stage (getvariable in an argument).
type RunInfo struct {
	Run       string            `json:"run"`
	Steps     int               `json:"steps"` // steps with metrics or rollouts
	LastStep  float64           `json:"last_step"`
	JobFiles  []string          `json:"job_files,omitempty"`
	JobSHA256 []string          `json:"job_sha256,omitempty"`
	Version   string            `json:"rljob_version,omitempty"`
	Seed      string            `json:"seed,omitempty"`
	Device    string            `json:"device,omitempty"`
	Dtype     string            `json:"dtype,omitempty"`
	Config    map[string]string `json:"config,omitempty"`
	Key       []KeyMetric       `json:"key,omitempty"`
}

// KeyMetric is the first, last and best value of one series of a run. Best
// is the maximum for rewards and eval scores, the minimum for losses, and
// absent (BestOf "") otherwise.
type KeyMetric struct {
	Name     string  `json:"name"`
	First    float64 `json:"first"`
	Last     float64 `json:"last"`
	Best     float64 `json:"best,omitempty"`
	BestStep float64 `json:"best_step,omitempty"`
	BestOf   string  `json:"best_of,omitempty"` // "max" | "min" | ""
}

// maxConfigValue bounds an argument's shown text (a query argument can be
// long); the full value is in the calls table.
const maxConfigValue = 300

// loadRunTable fills r.RunTable and r.Varied.
func (r *Report) loadRunTable(ctx context.Context, eng *rsql.Engine, md metricData) error {
	byRun := map[string]*RunInfo{}
	for _, run := range r.Runs {
		ri := &RunInfo{Run: run, Config: map[string]string{}}
		byRun[run] = ri
		r.RunTable = append(r.RunTable, ri)
		ri.Steps, ri.LastStep = r.Axes[run].count(md[run])
		ri.Key = r.keyMetrics(run)
	}
	if ok, err := hasView(ctx, eng, "calls"); err != nil {
		return err
	} else if ok {
		if err := loadCallArgs(ctx, eng, r.Runs, byRun); err != nil {
			return err
		}
	}
	if ok, err := hasView(ctx, eng, "steps"); err != nil {
		return err
	} else if ok {
		if err := loadJobFiles(ctx, eng, r.Runs, byRun); err != nil {
			return err
		}
	}
	for _, ri := range r.RunTable {
		ri.Seed = runSeed(eng.Lake(), ri.Run)
	}
	r.Varied = variedKeys(r.RunTable)
	return nil
}

// count returns the number of steps with data and the last one.
func (a *Axes) count(md map[string][]point) (int, float64) {
	steps := map[float64]bool{}
	if a != nil {
		for _, s := range a.Step {
			steps[s] = true
		}
	}
	for _, pts := range md {
		for _, p := range pts {
			steps[p.x] = true
		}
	}
	last := math.Inf(-1)
	for s := range steps {
		last = max(last, s)
	}
	if len(steps) == 0 {
		last = 0
	}
	return len(steps), last
}

const callArgsQuery = `SELECT run, stage, call, arg_max(args, step) FROM calls
WHERE run IN %s AND status = 'done' AND shard = 0 GROUP BY run, stage, call ORDER BY run, call`

func loadCallArgs(ctx context.Context, eng *rsql.Engine, runs []string, byRun map[string]*RunInfo) error {
	return query(ctx, eng, "calls", sprintfRuns(callArgsQuery, runs), func(s *stdsql.Rows) error {
		var run, stage, args string
		var call int
		if err := s.Scan(&run, &stage, &call, &args); err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(args), &m); err != nil {
			return fmt.Errorf("calls row of run %s call %d: args are not a JSON object: %w", run, call, err)
		}
		ri := byRun[run]
		for k, v := range m {
			text := argText(v)
			ri.Config[fmt.Sprintf("%s[%d].%s", stage, call, k)] = text
			if k == "device" && ri.Device == "" {
				ri.Device = text
			}
			if k == "dtype" && ri.Dtype == "" {
				ri.Dtype = text
			}
		}
		return nil
	})
}

func argText(v any) string {
	s, ok := v.(string)
	if !ok {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	if len(s) > maxConfigValue {
		s = s[:maxConfigValue] + "…"
	}
	return s
}

const jobFilesQuery = `SELECT run, list(DISTINCT job_file ORDER BY job_file), list(DISTINCT job_sha256 ORDER BY job_sha256), max(rljob_version)
FROM steps WHERE run IN %s GROUP BY run`

func loadJobFiles(ctx context.Context, eng *rsql.Engine, runs []string, byRun map[string]*RunInfo) error {
	return query(ctx, eng, "step markers", sprintfRuns(jobFilesQuery, runs), func(s *stdsql.Rows) error {
		var run string
		var files, shas []any
		var version stdsql.NullString
		if err := s.Scan(&run, &files, &shas, &version); err != nil {
			return err
		}
		ri := byRun[run]
		ri.JobFiles, ri.JobSHA256, ri.Version = strList(files), strList(shas), version.String
		return nil
	})
}

func strList(xs []any) []string {
	var out []string
	for _, x := range xs {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// runSeed returns the seed the run's stages committed with (the "seed" of a
// commit manifest of its first step that records one), "" when none does.
func runSeed(lake, run string) string {
	steps, _ := filepath.Glob(filepath.Join(lake, "*", arrowio.KeyRun+"="+run, arrowio.KeyStep+"=*"))
	sort.Slice(steps, func(i, j int) bool { return stepOfDir(steps[i]) < stepOfDir(steps[j]) })
	for _, dir := range steps {
		mans, _ := filepath.Glob(filepath.Join(dir, "part-*", arrowio.ManifestName))
		for _, p := range mans {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			var m struct {
				Args map[string]json.RawMessage `json:"args"`
			}
			if json.Unmarshal(b, &m) == nil && m.Args["seed"] != nil {
				return strings.Trim(string(m.Args["seed"]), `"`)
			}
		}
	}
	return ""
}

func stepOfDir(dir string) int64 {
	var n int64
	fmt.Sscanf(filepath.Base(dir), arrowio.KeyStep+"=%d", &n)
	return n
}

// variedKeys returns the configuration keys (and "seed", "job_sha256")
// whose values differ between the runs, sorted: a sweep's axes.
func variedKeys(runs []*RunInfo) []string {
	if len(runs) < 2 {
		return nil
	}
	vals := map[string]map[string]bool{}
	add := func(k, v string) {
		if vals[k] == nil {
			vals[k] = map[string]bool{}
		}
		vals[k][v] = true
	}
	for _, ri := range runs {
		add("seed", ri.Seed)
		add("job_sha256", strings.Join(ri.JobSHA256, ","))
		for k := range ri.Config {
			for _, o := range runs {
				add(k, o.Config[k])
			}
		}
	}
	var out []string
	for k, vs := range vals {
		if len(vs) > 1 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// keyMetrics are the run table's summaries: the reward, every pass@1, the
// entropy and the response length, where the run has them.
func (r *Report) keyMetrics(run string) []KeyMetric {
	var names []string
	for _, name := range append([]string{RewardSeries}, rewardFallbacks...) {
		if r.Series[run][name] != nil {
			names = append(names, name)
			break
		}
	}
	var evals []string
	for name := range r.Series[run] {
		if m := evalName.FindStringSubmatch(name); m != nil && m[2] == "pass@1" {
			evals = append(evals, name)
		}
	}
	sort.Strings(evals)
	names = append(names, evals...)
	names = append(names, "actor/entropy", "response_length/mean")
	var out []KeyMetric
	for _, name := range names {
		l := r.Series[run][name]
		if l == nil || len(l.Y) == 0 {
			continue
		}
		km := KeyMetric{Name: name, First: l.Y[0], Last: l.Y[len(l.Y)-1]}
		switch {
		case strings.Contains(name, "reward") || strings.Contains(name, "pass@"):
			km.BestOf = "max"
		case strings.Contains(name, "loss"):
			km.BestOf = "min"
		}
		if km.BestOf != "" {
			bi := 0
			for i, y := range l.Y {
				if (km.BestOf == "max" && y > l.Y[bi]) || (km.BestOf == "min" && y < l.Y[bi]) {
					bi = i
				}
			}
			km.Best, km.BestStep = l.Y[bi], l.X[bi]
		}
		out = append(out, km)
	}
	return out
}
