package report

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// maxPassKCurves bounds the checkpoints a pass@k-against-k panel draws per
// run (the first, the last and evenly spaced ones between), so its legend
// stays short however many evals a run made.
const maxPassKCurves = 5

// buildPanels fills r.Series with every metric of every run (eval metrics
// against their checkpoint step) and the scored reward, and r.Panels with,
// in order: the key charts (the PNG charts' metrics), the eval panels
// (pass@1 against checkpoint and pass@k against k per task, then the other
// val/ metrics), then one panel per remaining metric grouped by prefix. A
// panel whose metrics never vary is collapsed to its Flat summary.
func (r *Report) buildPanels(md metricData, reward map[string][]point) {
	r.Series = map[string]map[string]*Line{}
	names := map[string]bool{}
	for _, run := range r.Runs {
		r.Series[run] = map[string]*Line{}
		for name := range md[run] {
			names[name] = true
			r.Series[run][name] = lineOf(evalPoints(md[run], name))
		}
		if pts := reward[run]; len(pts) > 0 {
			r.Series[run][RewardSeries] = lineOf(pts)
		}
	}
	used := map[string]bool{}
	var panels []*Panel
	for _, c := range r.Charts {
		switch {
		case c.Kind == KindHeatmap:
			panels = append(panels, &Panel{ID: c.ID, Group: GroupKey, Title: c.Title, Kind: PanelImage, Notes: c.Notes})
		case !strings.HasPrefix(c.ID, "eval"):
			p := &Panel{ID: c.ID, Group: GroupKey, Title: c.Title, YLabel: c.YLabel, Kind: PanelLines, Metrics: c.Metrics, Notes: c.Notes}
			if c.ID == "reward" {
				// Each run's first of these it has; the fallbacks are
				// drawn in their own group too.
				p.Metrics, p.FirstOf = append([]string{RewardSeries}, rewardFallbacks...), true
				used[RewardSeries] = true
				for _, s := range c.Series {
					if s.Name != "reward (scored)" {
						p.Notes = append(p.Notes, "run "+s.Run+": "+s.Name+" (no train-tagged rows in scored)")
					}
				}
			}
			for _, m := range p.Metrics {
				used[m] = used[m] || !p.FirstOf
			}
			panels = append(panels, p)
		}
	}
	panels = append(panels, r.evalPanels(md, names, used)...)
	var rest []string
	for name := range names {
		if !used[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		panels = append(panels, &Panel{ID: "m-" + slug(name), Group: groupOf(name), Title: name, Kind: PanelLines, Metrics: []string{name}})
	}
	sort.SliceStable(panels, func(i, j int) bool { return groupLess(panels[i].Group, panels[j].Group) })
	ids := map[string]bool{}
	for i, p := range panels {
		if ids[p.ID] {
			p.ID += "-" + strconv.Itoa(i)
		}
		ids[p.ID] = true
		if p.Kind == PanelLines {
			p.Flat = flatSummary(r.Series, r.Runs, p.Metrics, p.FirstOf)
			if !r.hasAny(p.Metrics) {
				p.Flat = "no data: no " + strings.Join(p.Metrics, " or ") + " for run " + strings.Join(r.Runs, ", ")
			}
		}
	}
	r.Panels = panels
}

// hasAny reports whether some run has a series of metrics.
func (r *Report) hasAny(metrics []string) bool {
	for _, run := range r.Runs {
		for _, m := range metrics {
			if r.Series[run][m] != nil {
				return true
			}
		}
	}
	return false
}

// evalPoints returns the points of metric name of one run, with an eval
// metric's x moved from the step that logged it to the checkpoint it
// evaluated (val/<task>/policy_step of that step), in x order.
func evalPoints(run map[string][]point, name string) []point {
	m := evalName.FindStringSubmatch(name)
	if m == nil || m[2] == "policy_step" {
		return run[name]
	}
	ckpt := map[float64]float64{}
	for _, p := range run["val/"+m[1]+"/policy_step"] {
		ckpt[p.x] = p.y
	}
	if len(ckpt) == 0 {
		return run[name]
	}
	pts := slices.Clone(run[name])
	for i, p := range pts {
		if k, ok := ckpt[p.x]; ok {
			pts[i].x = k
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
	return pts
}

// evalPanels returns, per eval task (sorted): pass@1 against the checkpoint
// step, pass@k against k for a few checkpoints per run, then each other
// val/<task>/ metric; the metrics drawn are marked in used.
func (r *Report) evalPanels(md metricData, names, used map[string]bool) []*Panel {
	tasks := map[string][]string{}
	for name := range names {
		if m := evalName.FindStringSubmatch(name); m != nil && m[2] != "policy_step" {
			tasks[m[1]] = append(tasks[m[1]], m[2])
		}
	}
	var order []string
	for t := range tasks {
		order = append(order, t)
	}
	sort.Strings(order)
	var panels []*Panel
	for _, task := range order {
		ms := tasks[task]
		sortEvalMetrics(ms)
		prefix := "val/" + task + "/"
		var ks []string
		for _, m := range ms {
			if _, ok := passK(m); ok {
				ks = append(ks, m)
			}
		}
		if slices.Contains(ms, "pass@1") {
			panels = append(panels, &Panel{ID: "eval-" + slug(task) + "-pass1", Group: GroupEval, Title: "Eval " + task + ": pass@1 against checkpoint step",
				YLabel: "pass@1", Kind: PanelLines, Metrics: []string{prefix + "pass@1"}})
			used[prefix+"pass@1"] = true
		}
		if len(ks) > 1 {
			p := &Panel{ID: "eval-" + slug(task) + "-passk", Group: GroupEval, Title: "Eval " + task + ": pass@k against k per checkpoint", YLabel: "pass@k", Kind: PanelPassK}
			for _, run := range r.Runs {
				p.PassK = append(p.PassK, passKCurves(md[run], run, prefix, ks)...)
			}
			panels = append(panels, p)
		}
		for _, m := range ms {
			if !used[prefix+m] {
				panels = append(panels, &Panel{ID: "m-" + slug(prefix+m), Group: GroupEval, Title: prefix + m, Kind: PanelLines, Metrics: []string{prefix + m}})
				used[prefix+m] = true
			}
		}
		used[prefix+"policy_step"] = true
	}
	return panels
}

// passK parses "pass@k".
func passK(m string) (float64, bool) {
	k, ok := strings.CutPrefix(m, "pass@")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(k)
	return float64(n), err == nil && n > 0
}

// passKCurves returns one run's pass@k against k (metrics ks, sorted by k)
// at up to maxPassKCurves of its checkpoints.
func passKCurves(run map[string][]point, name, prefix string, ks []string) []PassKCurve {
	byCkpt := map[float64]*PassKCurve{}
	for _, m := range ks {
		k, _ := passK(m)
		for _, p := range evalPoints(run, prefix+m) {
			c := byCkpt[p.x]
			if c == nil {
				c = &PassKCurve{Run: name, Ckpt: p.x}
				byCkpt[p.x] = c
			}
			c.K, c.Y = append(c.K, k), append(c.Y, p.y)
		}
	}
	var all []PassKCurve
	for _, c := range byCkpt {
		all = append(all, *c)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Ckpt < all[j].Ckpt })
	if len(all) <= maxPassKCurves {
		return all
	}
	var out []PassKCurve
	last := -1
	for i := 0; i < maxPassKCurves; i++ {
		j := i * (len(all) - 1) / (maxPassKCurves - 1)
		if j != last {
			out = append(out, all[j])
			last = j
		}
	}
	return out
}
