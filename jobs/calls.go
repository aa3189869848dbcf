package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/rs/zerolog"

	"github.com/rljob/rljob/arrowio"
)

// CallsTable is the lake table of call records: the runner commits one unit
// calls/run=R/step=S/part-<call>-<shard>/ after each stage call of a step,
// once the call's outputs are committed, whether it ran or was skipped by
// when :=. A call with a record is skipped on a rerun of the step, the other
// shards wait for these records (shards in lockstep), and each record names
// the job file, so a step is never resumed with another job file.
//
// File columns (run and step come from the path):
//
//	shard INTEGER, num_shards INTEGER, call INTEGER, stage VARCHAR,
//	status VARCHAR ('done' | 'skipped'), args VARCHAR (the evaluated
//	arguments as JSON), rows BIGINT, job_sha256 VARCHAR
const CallsTable = arrowio.TableCalls

// Call statuses.
const (
	StatusDone    = "done"
	StatusSkipped = "skipped" // when := was false or NULL
)

// CallsSchema is the file schema of the calls table (arrowio.CallsSchema).
func CallsSchema() *arrow.Schema { return arrowio.CallsSchema() }

// callRecord is one row of the calls table.
type callRecord struct {
	shard, numShards, call int
	stage, status          string
	args                   map[string]any
	rows                   int64
	sha                    string
}

// commitCallRecord commits rec for (run, step) and returns nil when the unit
// was committed already (a rerun).
func commitCallRecord(l *arrowio.Lake, run string, step int64, rec callRecord) error {
	u := arrowio.Unit{Table: CallsTable, Run: run, Step: step, Call: rec.call, Shard: rec.shard}
	args, err := json.Marshal(rec.args)
	if err != nil {
		return fmt.Errorf("jobs: call record %s: %w", u.Dir(), err)
	}
	meta := map[string]any{"stage": rec.stage, "status": rec.status, "num_shards": rec.numShards, "job_sha256": rec.sha, "device": Device()}
	st, err := l.Begin(u, meta)
	if err != nil {
		return fmt.Errorf("jobs: call record %s: %w", u.Dir(), err)
	}
	rr := arrowio.CallRecord(rec.shard, rec.numShards, rec.call, rec.stage, rec.status, string(args), rec.rows, rec.sha)
	defer rr.Release()
	if _, err := st.WriteRecords(u.FileName(), nil, rr); err != nil {
		_ = st.Abort()
		return fmt.Errorf("jobs: call record %s: %w", u.Dir(), err)
	}
	if _, err := st.Commit(); err != nil && !errors.Is(err, arrowio.ErrAlreadyCommitted) {
		return fmt.Errorf("jobs: call record %s: %w", u.Dir(), err)
	}
	return nil
}

// stepRecord is what the lake says about one (run, step): the call records
// and step markers of every shard, with the job file and shard count each
// recorded.
type stepRecord struct {
	calls   map[[2]int]*arrowio.Manifest // (call, shard) → manifest
	markers map[int]*arrowio.Manifest    // shard → manifest
	lake    string                       // lake root, for the hints
}

func readStepRecord(l *arrowio.Lake, run string, step int64) (*stepRecord, error) {
	r := &stepRecord{calls: map[[2]int]*arrowio.Manifest{}, markers: map[int]*arrowio.Manifest{}, lake: l.Root}
	for _, table := range []string{CallsTable, StepsTable} {
		us, err := l.StepUnits(table, run, step)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			m, err := l.ReadManifest(u)
			if err != nil {
				return nil, &DataError{Msg: fmt.Sprintf("unreadable record %s", u.Dir()), File: l.Path(u.Dir()), Err: err,
					Hint: "lake verify names the damage; delete that folder to redo the call"}
			}
			if table == CallsTable {
				r.calls[[2]int{u.Call, u.Shard}] = m
			} else {
				r.markers[u.Shard] = m
			}
		}
	}
	return r, nil
}

// checkIdentity refuses to go on with a step that another job file, or
// another shard count, started.
func (r *stepRecord) checkIdentity(run string, step int64, job *Job, numShards int) error {
	var all []*arrowio.Manifest
	for _, m := range r.calls {
		all = append(all, m)
	}
	for _, m := range r.markers {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Unit.Dir() < all[j].Unit.Dir() })
	for _, m := range all {
		if sha, _ := m.Args["job_sha256"].(string); sha != "" && sha != job.SHA256 {
			return &UsageError{
				Msg: fmt.Sprintf("step %d of run %q was started by a job file with sha256 %s (%s); %s has sha256 %s",
					step, run, short(sha), m.Unit.Dir(), job.File, short(job.SHA256)),
				Hint: fmt.Sprintf("finish the step with the job file that started it (rerun it unchanged), or drop the unfinished step and rerun it with this job file: %s; or start a new run with --run NAME",
					DropStepCommand(r.lake, run, step)),
			}
		}
		if n, ok := manifestInt(m, "num_shards"); ok && n != numShards {
			return &UsageError{
				Msg:  fmt.Sprintf("step %d of run %q is being run with %d shards (%s); this runner has %d", step, run, n, m.Unit.Dir(), numShards),
				Hint: fmt.Sprintf("give every shard of a step the same count: --shard i/%d", n),
			}
		}
	}
	return nil
}

// DropStepCommand is the command that drops step of run in the lake at
// root, quoted for a POSIX shell.
func DropStepCommand(root, run string, step int64) string {
	return fmt.Sprintf("rljob lake drop-step --lake %s --run %s --step %d", shellQuote(root), shellQuote(run), step)
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_./=:+,@%.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func manifestInt(m *arrowio.Manifest, k string) (int, bool) {
	if v, ok := m.Args[k].(json.Number); ok {
		n, err := v.Int64()
		return int(n), err == nil
	}
	return 0, false
}

// waiter polls the lake until a condition holds, logging progress and
// giving up after timeout with a DataError naming what is missing.
type waiter struct {
	timeout time.Duration
	log     zerolog.Logger
}

// waitFor polls missing() until it returns no shard; what describes the
// wait ("shard 0's train call", "step 4 markers") for logs and errors.
func (w waiter) waitFor(ctx context.Context, what string, missing func() ([]int, error)) error {
	start := time.Now()
	lastLog := start
	delay := 50 * time.Millisecond
	for {
		m, err := missing()
		if err != nil || len(m) == 0 {
			return err
		}
		if w.timeout > 0 && time.Since(start) > w.timeout {
			return &DataError{
				Msg:  fmt.Sprintf("gave up after %s waiting for %s: shards %s have not committed", w.timeout, what, joinInts(m)),
				Hint: "start the missing shards (same job file, --run and --shard i/n), or raise --wait-timeout; a rerun resumes where this one stopped",
			}
		}
		if time.Since(lastLog) >= 30*time.Second {
			w.log.Info().Str("waiting_for", what).Str("missing_shards", joinInts(m)).Str("waited", time.Since(start).Round(time.Second).String()).Msg("waiting for other shards")
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
