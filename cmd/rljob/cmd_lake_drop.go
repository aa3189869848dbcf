package main

import (
	"errors"
	"fmt"

	"github.com/rljob/rljob/arrowio"
	"github.com/rljob/rljob/jobs"
)

// lakeDropStep removes an unfinished step of a run (arrowio.DropStep) under
// the run's lock, and says what it removed.
func lakeDropStep(e *env, l *arrowio.Lake, run string, step int64) error {
	if run == "" || step < 0 {
		return &jobs.UsageError{Msg: "lake drop-step needs --run R and --step S (S >= 0)",
			Hint: "e.g. rljob lake drop-step --lake ./lake --run r1 --step 3 (rljob lake ls shows runs and steps)"}
	}
	if err := arrowio.ValidatePartitionValue(run); err != nil {
		return &jobs.UsageError{Msg: fmt.Sprintf("--run %q", run), Err: err}
	}
	lock, err := jobs.AcquireRunnerLock(l.Root, run, 0, 1)
	if err != nil {
		return err
	}
	defer lock.Release()
	rep, err := l.DropStep(run, step)
	var me *arrowio.MarkerError
	switch {
	case errors.Is(err, arrowio.ErrStepComplete):
		return &jobs.UsageError{Msg: "lake drop-step: " + err.Error(),
			Hint: "a complete step is the run's history; to redo later steps start a new run (init_policy policy := 'run=" + run + "/step=K')"}
	case errors.Is(err, arrowio.ErrNothingToDrop):
		return &jobs.UsageError{Msg: "lake drop-step: " + err.Error(), Hint: "rljob lake ls shows the runs and steps of the lake"}
	case errors.As(err, &me):
		return &jobs.DataError{Msg: "lake drop-step: " + me.Error(), File: me.Dir,
			Hint: "rljob lake verify lists the lake's problems; fix the marker as said, then rerun drop-step"}
	case err != nil:
		return fmt.Errorf("lake drop-step: %w", err)
	}
	for _, u := range rep.Units {
		fmt.Fprintf(e.stdout, "removed %s (%d rows, %d bytes)\n", u.Dir(), u.Rows, u.Bytes)
	}
	fmt.Fprintf(e.stdout, "ok: dropped step %d of run %s: %d committed units in %d tables; the next run of the job redoes the step\n",
		step, run, len(rep.Units), len(rep.Folders))
	return nil
}
