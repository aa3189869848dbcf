package jobs

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/rljob/rljob/arrowio"
	rsql "github.com/rljob/rljob/sql"
)

// queryStart tells a query from a table name in a table argument (as the
// stages read them: a value starting with SELECT, WITH, FROM, ( ... is a
// query).
var queryStart = regexp.MustCompile(`(?is)^\s*(\(|select\b|with\b|from\b|values\b|table\b|pivot\b|unpivot\b|summarize\b|describe\b)`)

// IsQuery reports whether a table argument's value is a query rather than
// a table name.
func IsQuery(v string) bool { return queryStart.MatchString(v) }

var (
	createdRE      = regexp.MustCompile(`(?is)^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$.]*)`)
	readsPromptsRE = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+prompts\b`)
	readsRunRE     = regexp.MustCompile(`(?i)getvariable\s*\(\s*'{1,2}run'{1,2}\s*\)`)
)

// dryChecks checks what a dry run can without running: every table
// argument names a table the job creates (with CREATE, or as a stage's
// output), a view or table of the engine (the lake's), or is a query that
// parses (an error); and, as warnings,
// that the run has the prompts and the checkpoint the job reads before it
// writes them (the lake at root, from step next).
func dryChecks(ctx context.Context, e *rsql.Engine, job *Job, root, run string, next int64) ([]Warning, error) {
	created := map[string]bool{}
	for _, s := range job.Stmts {
		if m := createdRE.FindStringSubmatch(s.Text); m != nil {
			created[strings.ToLower(strings.Trim(m[1], `"`))] = true
		}
		if s.Stage != nil { // a lake table a call writes is a view from the next step on
			for _, t := range s.Stage.Spec().Outputs(s.Args) {
				created[strings.ToLower(t)] = true
			}
		}
	}
	catalog, err := catalogNames(ctx, e)
	if err != nil {
		return nil, err
	}
	var warns []Warning
	written := map[string]bool{}
	for _, s := range job.Stmts {
		if s.Loop != nil {
			continue
		}
		if s.Stage != nil {
			if err := checkTableArgs(ctx, e, s, created, catalog); err != nil {
				return nil, err
			}
			if w, ok := needsCheckpoint(s, written, root, run, next); ok {
				warns = append(warns, w)
			}
		}
		if w, ok := needsPrompts(ctx, e, s, written, run); ok {
			warns = append(warns, w)
		}
		if s.Stage != nil {
			for _, t := range s.Stage.Spec().Outputs(s.Args) {
				written[t] = true
			}
		}
	}
	return warns, nil
}

// catalogNames lists the engine's tables and views (lower case).
func catalogNames(ctx context.Context, e *rsql.Engine) (map[string]bool, error) {
	rows, err := e.Conn().QueryContext(ctx, `SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views()`)
	if err != nil {
		return nil, fmt.Errorf("jobs: dry run: list tables: %w", err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names[strings.ToLower(n)] = true
	}
	return names, rows.Err()
}

// checkTableArgs checks a call's literal table arguments: a table name
// must exist by the time the job runs, a query must parse.
func checkTableArgs(ctx context.Context, e *rsql.Engine, s Stmt, created, catalog map[string]bool) error {
	spec := s.Stage.Spec()
	for _, as := range spec.Args {
		if as.Type != TypeTable && as.Type != TypeQuery || !s.Args.Given(as.Name) {
			continue
		}
		v := strings.TrimSpace(s.Args.String(as.Name))
		if v == "" {
			continue // an expression, known at run time
		}
		if as.Type == TypeQuery || IsQuery(v) {
			if err := parseOnly(ctx, e, "SELECT * FROM ("+strings.TrimRight(v, "; \t\n")+"\n)"); err != nil {
				return &UsageError{Pos: s.Args.Pos(as.Name), Stmt: s.Text,
					Msg:  fmt.Sprintf("%s: %s := '%s' is not a valid query", spec.Name, as.Name, firstLine(v)),
					Hint: firstLine(strings.TrimPrefix(err.Error(), "sql: "))}
			}
			continue
		}
		name := strings.ToLower(strings.Trim(v, `"`))
		if created[name] || catalog[name] || strings.HasPrefix(name, rsql.ThisStepPrefix) || strings.Contains(name, ".") {
			continue
		}
		var known []string
		for n := range created {
			known = append(known, n)
		}
		hint := "create it in an earlier statement (CREATE OR REPLACE TABLE " + v + " AS SELECT ...), or pass a query ('SELECT ...')"
		if m := closest(name, known); m != "" && editDistance(name, m) <= 2 {
			hint = fmt.Sprintf("did you mean %s? ", m) + hint
		}
		return &UsageError{Pos: s.Args.Pos(as.Name), Stmt: s.Text,
			Msg:  fmt.Sprintf("%s: %s := '%s': no statement of the job creates a table or view %s, and the lake has none", spec.Name, as.Name, v, v),
			Hint: hint}
	}
	return nil
}

// needsCheckpoint warns about a call that reads policy := 'latest' when no
// earlier statement writes a checkpoint and the lake holds none of the run
// before step next.
func needsCheckpoint(s Stmt, written map[string]bool, root, run string, next int64) (Warning, bool) {
	spec := s.Stage.Spec()
	if !hasArg(spec, "policy") || s.Args.String("policy") != "latest" || written[arrowio.TableCheckpoints] {
		return Warning{}, false
	}
	if root != "" {
		if units, err := (&arrowio.Lake{Root: root}).Units(arrowio.TableCheckpoints, run); err == nil {
			for _, u := range units {
				if u.Step < next {
					return Warning{}, false
				}
			}
		}
	}
	return Warning{Pos: s.Pos,
		Msg:  fmt.Sprintf("%s reads policy := 'latest', but run %q has no checkpoint before step %d and no earlier statement of the job writes one", spec.Name, run, next),
		Hint: "make the run's first checkpoint first (e.g. rljob run examples/arith/sft.sql, or a job with CALL init_policy(...)), or choose the --run that has one"}, true
}

// needsPrompts warns about a statement that reads this run's prompts when
// the lake holds none for the run and no earlier call writes any.
func needsPrompts(ctx context.Context, e *rsql.Engine, s Stmt, written map[string]bool, run string) (Warning, bool) {
	if written[arrowio.TablePrompts] || !readsPromptsRE.MatchString(s.Text) || !readsRunRE.MatchString(s.Text) {
		return Warning{}, false
	}
	var n int64
	if err := e.Conn().QueryRowContext(ctx, `SELECT count(*) FROM prompts WHERE run = ?`, run).Scan(&n); err == nil && n > 0 {
		return Warning{}, false
	}
	hint := "load them first (e.g. rljob run examples/arith/prepare.sql --run " + run + ")"
	var runs string
	if err := e.Conn().QueryRowContext(ctx, `SELECT coalesce(string_agg(DISTINCT run, ', ' ORDER BY run), '') FROM prompts`).Scan(&runs); err == nil && runs != "" {
		hint += ", or use a --run that has prompts: " + runs
	}
	return Warning{Pos: s.Pos, Msg: fmt.Sprintf("this statement reads the prompts of run %q, but the lake has none for that run and no earlier statement writes any", run),
		Hint: hint}, true
}

func hasArg(spec StageSpec, name string) bool {
	for _, a := range spec.Args {
		if a.Name == name {
			return true
		}
	}
	return false
}
