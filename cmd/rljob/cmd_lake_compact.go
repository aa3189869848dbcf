package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
	rsql "github.com/rljob/rljob/sql"
)

// lakeCompact writes the segments of complete steps (sql.CompactLake).
func lakeCompact(ctx context.Context, e *env, l *arrowio.Lake, run string) error {
	t0 := time.Now()
	segs, err := rsql.CompactLake(ctx, l.Root, rsql.CompactOptions{Run: run})
	for _, s := range segs {
		fmt.Fprintf(e.stdout, "wrote %s\n", s.Dir())
	}
	if errors.Is(err, rsql.ErrCompactionBusy) {
		return &jobs.LockError{What: "the lake's compaction", Lock: filepath.Join(l.Root, arrowio.LocksDir, rsql.CompactLockName),
			Holder: "another rljob lake compact, or a runner's --compact-every", Hint: "wait for it to finish: one compaction at a time"}
	}
	if err != nil {
		return fmt.Errorf("lake compact: %w", err)
	}
	fmt.Fprintf(e.stdout, "ok: %d segments written in %s\n", len(segs), time.Since(t0).Round(time.Millisecond))
	return nil
}

// checkpointRefs reads what names checkpoints outside their manifests: the
// policy and ref arguments in call records (rollout, logprobs, train, ...)
// and the rollouts' (run, step, policy_step, tag).
func checkpointRefs(ctx context.Context, l *arrowio.Lake) ([]arrowio.ArgRef, []arrowio.RolloutRef, error) {
	eng, err := rsql.Open(ctx, l.Root)
	if err != nil {
		return nil, nil, err
	}
	defer eng.Close()
	if len(eng.TableErrors()) > 0 {
		return nil, nil, eng.TableErrors()[0]
	}
	var args []arrowio.ArgRef
	var ros []arrowio.RolloutRef
	tables := map[string]bool{}
	ts, err := l.Tables()
	if err != nil {
		return nil, nil, err
	}
	for _, t := range ts {
		tables[t] = true
	}
	if tables[arrowio.TableCalls] {
		rows, err := eng.Conn().QueryContext(ctx, "SELECT run, step, args FROM calls WHERE args LIKE '%\"policy\"%' OR args LIKE '%\"ref\"%'")
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				run  string
				step int64
				js   string
			)
			if err := rows.Scan(&run, &step, &js); err != nil {
				return nil, nil, err
			}
			var m map[string]any
			if json.Unmarshal([]byte(js), &m) != nil {
				continue
			}
			for _, k := range []string{"policy", "ref"} {
				if v, ok := m[k].(string); ok {
					args = append(args, arrowio.ArgRef{Run: run, Step: step, Value: v})
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	rows, err := eng.Conn().QueryContext(ctx, "SELECT DISTINCT run, step, policy_step, coalesce(tag, '') = 'train' FROM rollouts WHERE policy_step IS NOT NULL AND policy_step >= 0")
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r arrowio.RolloutRef
		if err := rows.Scan(&r.Run, &r.Step, &r.PolicyStep, &r.Train); err != nil {
			return nil, nil, err
		}
		ros = append(ros, r)
	}
	return args, ros, rows.Err()
}
