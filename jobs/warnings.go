package jobs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/rljob/rljob/arrowio"
)

// Warning is something in a job that runs but probably does not do what
// was meant.
type Warning struct {
	Pos  Pos
	Msg  string
	Hint string
}

func (w Warning) String() string { return fmt.Sprintf("%s: warning: %s (%s)", w.Pos, w.Msg, w.Hint) }

// currentStepRE matches a filter on the current step: step =
// getvariable('step') either way round, the column maybe qualified, the
// quotes maybe doubled (inside a query argument).
var currentStepRE = regexp.MustCompile(`(?i)(\bstep\s*=\s*(?:CAST\s*\(\s*)?getvariable\s*\(\s*'{1,2}step'{1,2}\s*\))|(getvariable\s*\(\s*'{1,2}step'{1,2}\s*\)(?:\s*::\s*\w+)?\s*=\s*(?:\w+\.)?step\b)`)

// lakeViews are the views that show earlier steps only (the lake's tables
// and the views over them); each has a this_step_ twin.
var lakeViews = []string{arrowio.TablePrompts, arrowio.TableRollouts, arrowio.TableRewards, arrowio.TableMetrics,
	arrowio.TableCalls, "scored"}

// StepFilterWarnings finds statements that read a lake view filtered on
// the current step: a lake view shows the steps before the current one, so
// such a filter always selects nothing; this step's rows are in the
// this_step_ views. tables are more lake tables (the lake's own).
func StepFilterWarnings(job *Job, tables []string) []Warning {
	views := map[string]bool{}
	for _, t := range append(append([]string{}, lakeViews...), tables...) {
		if !strings.HasPrefix(t, "_") && t != arrowio.TableSteps && t != arrowio.TableCheckpoints {
			views[t] = true
		}
	}
	var names []string
	for v := range views {
		names = append(names, regexp.QuoteMeta(v))
	}
	sort.Strings(names)
	viewRE := regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+(` + strings.Join(names, "|") + `)\b`)
	var out []Warning
	for _, s := range job.Stmts {
		if s.Loop != nil {
			continue
		}
		f := currentStep(s.Text)
		v := viewRE.FindStringSubmatchIndex(s.Text)
		if f == nil || v == nil {
			continue
		}
		view := s.Text[v[2]:v[3]]
		out = append(out, Warning{Pos: textPos(s, f[0]),
			Msg: fmt.Sprintf("the lake view %s is filtered on %s, but it shows only the steps before the current one, so the filter selects no row",
				view, strings.TrimSpace(s.Text[f[0]:f[1]])),
			Hint: fmt.Sprintf("read this step's rows from this_step_%s, or an earlier step with step = getvariable('step') - 1", strings.ToLower(view))})
	}
	return out
}

// currentStep returns the span of the first filter on the current step
// (not step = getvariable('step') - 1), nil if none.
func currentStep(text string) []int {
	for _, f := range currentStepRE.FindAllStringIndex(text, -1) {
		rest := strings.TrimLeft(text[f[1]:], " \t\r\n")
		if rest == "" || !strings.ContainsRune("+-*/%|", rune(rest[0])) {
			return f
		}
	}
	return nil
}

// warnJob logs the job's warnings; tables are the lake's tables.
func warnJob(o Options, job *Job, root string) {
	var tables []string
	if root != "" {
		tables, _ = (&arrowio.Lake{Root: root}).Tables()
	}
	for _, w := range StepFilterWarnings(job, tables) {
		o.Log.Warn().Str("at", w.Pos.String()).Str("hint", w.Hint).Msg(w.Msg)
	}
}

// textPos is the file position of byte off of the statement's text.
func textPos(s Stmt, off int) Pos {
	p := s.Pos
	before := s.Text[:off]
	if n := strings.Count(before, "\n"); n > 0 {
		p.Line += n
		p.Col = len(before) - strings.LastIndex(before, "\n")
	} else {
		p.Col += len(before)
	}
	return p
}
