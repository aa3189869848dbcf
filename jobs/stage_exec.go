package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs/extproc"
)

// execStage runs an external command with Parquet in and out.
type execStage struct{}

// CurrentPolicy, when set, returns the checkpoint folder and tokenizer file
// of the policy that policy := 'latest' resolves to for the call sc, or
// dir = "" when the run has none yet; exec passes them to its command as
// RLJOB_POLICY_DIR and RLJOB_TOKENIZER. Checkpoints are jobs/rl's (which
// this package cannot import), so jobs/rl sets it at init, from the same
// function its stages resolve 'latest' with; in a binary without jobs/rl it
// stays nil and exec sets neither variable.
var CurrentPolicy func(sc *StageCtx) (dir, tokenizer string, err error)

func (execStage) Spec() StageSpec {
	return StageSpec{
		Name: "exec",
		Doc: "Run an external command (sh -c) — a vLLM or PyTorch job, a code sandbox — and commit the Parquet file it " +
			"writes to the lake table `output`. It runs in the job file's folder (relative paths resolve as the job file's " +
			"do), its output goes to rljob's stderr, and batch logs get a progress line (seconds running) every " +
			"--progress-interval. Environment: RLJOB_INPUT (the input table written as Parquet; unset " +
			"without input), RLJOB_OUTPUT (where the command must write Parquet), RLJOB_RUN, RLJOB_STEP, RLJOB_SHARD, " +
			"RLJOB_NUM_SHARDS, RLJOB_SEED (derived for this call), RLJOB_LAKE, and the current policy: RLJOB_POLICY_DIR (the " +
			"checkpoint folder that policy := 'latest' names for this call: the run's newest checkpoint of an earlier step or of an " +
			"earlier statement of this step) and RLJOB_TOKENIZER (its tokenizer.json); both unset while the run has no checkpoint. A non-zero exit status or a missing " +
			"output file is an error and commits nothing. Into a known table the output is conformed to its schema as " +
			"save does. Sharded when it has an input: the shard's rows are those " +
			"with hash(prompt_id) % num_shards = shard; without input it runs on shard 0 only.",
		Sharded: true,
		Args: []ArgSpec{
			{Name: "input", Type: TypeTable, Doc: "table or query written to RLJOB_INPUT (optional)"},
			{Name: "command", Type: TypeString, Required: true, Doc: "shell command, run with sh -c"},
			{Name: "output", Type: TypeString, Required: true, Doc: "lake table to commit RLJOB_OUTPUT to"},
		},
		Outputs: func(a Args) []string { return []string{a.String("output")} },
		Check:   func(a Args) (string, string) { return checkOutputTable(a.String("output")) },
	}
}

// Run writes the input, runs the command, and commits its output.
func (execStage) Run(ctx context.Context, sc *StageCtx, a Args) (Summary, error) {
	into := a.String("output")
	if !a.Has("input") && sc.NumShards > 1 && sc.Shard != 0 {
		return Summary{Table: into, Skipped: true, Note: "exec without input runs on shard 0 only"}, nil
	}
	dir, err := os.MkdirTemp("", "rljob-exec-")
	if err != nil {
		return Summary{}, fmt.Errorf("jobs: exec: %w", err)
	}
	defer os.RemoveAll(dir)
	input, output := filepath.Join(dir, "input.parquet"), filepath.Join(dir, "output.parquet")

	env := append(os.Environ(),
		"RLJOB_OUTPUT="+output,
		"RLJOB_RUN="+sc.Run,
		"RLJOB_STEP="+strconv.FormatInt(sc.Step, 10),
		"RLJOB_SHARD="+strconv.Itoa(sc.Shard),
		"RLJOB_NUM_SHARDS="+strconv.Itoa(sc.NumShards),
		"RLJOB_SEED="+strconv.FormatInt(sc.SeedFor(), 10),
		"RLJOB_LAKE="+sc.Lake.Root,
	)
	if CurrentPolicy != nil {
		pdir, tok, err := CurrentPolicy(sc)
		if err != nil {
			return Summary{}, fmt.Errorf("jobs: exec: current policy: %w", err)
		}
		if pdir != "" {
			env = append(env, "RLJOB_POLICY_DIR="+pdir, "RLJOB_TOKENIZER="+tok)
		}
	}
	if a.Has("input") {
		t := a.String("input")
		if sc.NumShards > 1 {
			if err := sc.RequireColumns(ctx, "input", t, "prompt_id"); err != nil {
				return Summary{}, err
			}
		} else if _, err := sc.Columns(ctx, "input", t); err != nil {
			return Summary{}, err
		}
		q := fmt.Sprintf("COPY (SELECT * FROM %s WHERE %s) TO %s (FORMAT parquet)", TableRef(t), sc.ShardPredicate("prompt_id"), QuoteString(input))
		if err := sc.Engine.Exec(ctx, q); err != nil {
			return Summary{}, ClassifySQL(err, a.Pos("input"), q)
		}
		env = append(env, "RLJOB_INPUT="+input)
	}

	cmd := exec.CommandContext(ctx, "sh", "-c", a.String("command"))
	// The command runs in its own process group so that, when the run is
	// interrupted, the whole group (sh and what it started) gets SIGTERM,
	// then SIGKILL after execGrace, and Run returns instead of waiting for
	// a grandchild that still holds the output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = execGrace
	cmd.Env = env
	cmd.Dir = sc.JobDir // relative paths in the command resolve as the job file's do
	if cmd.Dir == "" {
		cmd.Dir, _ = os.Getwd()
	}
	tail := &extproc.Tail{Max: 4096}
	cmd.Stdout = io.MultiWriter(os.Stderr, tail)
	cmd.Stderr = io.MultiWriter(os.Stderr, tail)
	sc.Log.Info().Str("command", a.String("command")).Msg("exec: running")
	if err := runWithHeartbeat(cmd, sc.Bar("exec", 0)); err != nil {
		if ctx.Err() != nil {
			return Summary{}, ctx.Err()
		}
		msg := "exec: " + exitDescription(err)
		if t := strings.TrimSpace(tail.String()); t != "" {
			msg += "; its output ends with:\n" + indent(t, "    ")
		}
		return Summary{}, fmt.Errorf("%s: %s (nothing committed)", sc.Pos, msg)
	}
	if st, err := os.Stat(output); err != nil || !st.Mode().IsRegular() {
		return Summary{}, fmt.Errorf("%s: exec: the command exited 0 but wrote no file at $RLJOB_OUTPUT (%s); nothing committed", sc.Pos, output)
	}
	raw := "SELECT * FROM read_parquet(" + QuoteString(output) + ")"
	q := raw
	sch, known := arrowio.SchemaFor(into)
	var cols []string
	if known {
		if cols, err = sc.Columns(ctx, "output", "("+q+")"); err != nil {
			return Summary{}, &DataError{Pos: sc.Pos, Msg: "exec: cannot read the command's output $RLJOB_OUTPUT as Parquet", File: output, Hint: firstLine(err.Error())}
		}
		q = conformSQL(sch, cols, q)
	}
	// readErr names the first value that does not fit its column's type in
	// the known table, or else passes DuckDB's message on.
	readErr := func(err error) error {
		if known {
			if e := badOutputValue(ctx, sc, into, sch, cols, raw); e != nil {
				e.File = output
				return e
			}
		}
		return &DataError{Pos: sc.Pos, Msg: "exec: cannot read the command's output $RLJOB_OUTPUT as Parquet", File: output, Hint: firstLine(err.Error())}
	}
	rr, err := sc.Engine.QueryArrow(ctx, q)
	if err != nil {
		return Summary{}, readErr(err)
	}
	defer rr.Release()
	if name, i, j, dup := duplicateColumn(fieldNames(rr.Schema())); dup {
		return Summary{}, &DataError{Pos: sc.Pos, Msg: fmt.Sprintf("exec: the command's output has two columns named %q (columns %d and %d); nothing committed", name, i, j),
			File: output, Column: name, Hint: "write each column once, under distinct names"}
	}
	body, empty, err := peekNonEmpty(rr)
	if err != nil {
		return Summary{}, readErr(err)
	}
	defer body.Release()
	if empty {
		return Summary{Table: into, Skipped: true, Note: "exec: the command's output has no rows: nothing committed"}, nil
	}
	rows, err := sc.Commit(ctx, into, body)
	if err != nil {
		return Summary{}, err
	}
	return Summary{Table: into, Rows: rows}, nil
}

// badOutputValue finds the first column of src (the command's output) that
// table into's schema sch types, and a value in it that does not convert to
// that type; it returns the error naming the column and the value first,
// or nil when every value converts (the failure was elsewhere).
func badOutputValue(ctx context.Context, sc *StageCtx, into string, sch *arrow.Schema, have []string, src string) *DataError {
	got := map[string]string{}
	for _, c := range have {
		got[strings.ToLower(c)] = c
	}
	for _, f := range sch.Fields() {
		c, ok := got[strings.ToLower(f.Name)]
		if !ok {
			continue
		}
		typ := arrowio.DuckType(f.Type)
		col := "q." + QuoteIdent(c)
		probe := fmt.Sprintf("SELECT CAST(%s AS VARCHAR), typeof(%s) FROM (%s) AS q WHERE %s IS NOT NULL AND TRY_CAST(%s AS %s) IS NULL LIMIT 1",
			col, col, src, col, col, typ)
		rows, err := sc.Engine.Conn().QueryContext(ctx, probe)
		if err != nil {
			continue
		}
		var val, from string
		found := rows.Next() && rows.Scan(&val, &from) == nil
		rows.Close()
		if found {
			return &DataError{Pos: sc.Pos, Column: f.Name,
				Msg:  fmt.Sprintf("exec: column %q of the command's output: value %s (%s) is not a %s, the type of %s.%s; nothing committed", c, clipValue(val), from, typ, into, f.Name),
				Hint: fmt.Sprintf("write %s as %s (or a type that converts to it), or commit to another table with output := 'my_table'", f.Name, typ)}
		}
	}
	return nil
}

// clipValue quotes v for a message, cut at 60 characters.
func clipValue(v string) string {
	if r := []rune(v); len(r) > 60 {
		v = string(r[:57]) + "..."
	}
	return QuoteString(v)
}

// execGrace is how long an interrupted exec command has between SIGTERM
// and SIGKILL.
const execGrace = 10 * time.Second

// exitDescription says how a command ended: its exit status, or the signal
// that killed it ("killed by SIGKILL (signal 9)"), with the reading of a
// shell's 128+N status for a child the shell saw killed.
func exitDescription(err error) string {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Sprintf("command failed: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		msg := "command was killed by " + SignalName(ws.Signal())
		if ws.Signal() == syscall.SIGKILL {
			msg += " (out of memory, a time limit, or kill -9?)"
		}
		return msg
	}
	code := ee.ExitCode()
	msg := fmt.Sprintf("command exited with status %d", code)
	if code > 128 && code < 128+65 {
		msg += fmt.Sprintf(" (a shell's way of saying that a process it ran was killed by %s)", SignalName(syscall.Signal(code-128)))
	}
	return msg
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

// runWithHeartbeat runs cmd, counting each second it runs on bar (so batch
// logs get a progress line every --progress-interval while a long external
// job runs); the counting happens on the stage's own goroutine.
func runWithHeartbeat(cmd *exec.Cmd, bar Bar) error {
	defer bar.Done()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			bar.Add(1)
		}
	}
}
