package env

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openExecEnv(t *testing.T) Env {
	t.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open("exec:sh env.sh", Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestExecEnv: 64 episodes of 3 turns run concurrently against one
// process; each turn gets its own observation, reward and done.
func TestExecEnv(t *testing.T) {
	e := openExecEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ep := &Episode{ID: fmt.Sprintf("r/0/0/p%d/0", i), PromptID: fmt.Sprint("p", i), Prompt: "2+2=", Finish: FinishStop}
			for turn := 0; ; turn++ {
				ep.Turn, ep.Text = turn, fmt.Sprint("t", turn)
				o, err := e.Step(context.Background(), ep)
				if err != nil {
					errs <- err
					return
				}
				if o.Text != fmt.Sprint(" obs", turn) || o.Reward == nil || *o.Reward != float64(turn) || o.Done != (turn == 2) {
					errs <- fmt.Errorf("episode %d turn %d: %+v", i, turn, o)
					return
				}
				if o.Done {
					return
				}
				ep.History = append(ep.History, Exchange{ep.Text, o.Text})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestExecEnvStallAndErrors: a stalled turn returns at its deadline
// (context.DeadlineExceeded, which rollout records as a timeout) while
// other episodes go on; a crash names the command, the episode, the turn
// and the stderr tail.
func TestExecEnvStallAndErrors(t *testing.T) {
	e := openExecEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := e.Step(ctx, &Episode{ID: "ep-stall", Turn: 1, Text: "stall"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 2*time.Second {
		t.Fatalf("stalled turn: %v after %s, want the deadline at 500ms", err, time.Since(t0))
	}
	if o, err := e.Step(context.Background(), &Episode{ID: "ep-ok", Turn: 0, Text: "x"}); err != nil || o.Text != " obs0" {
		t.Fatalf("turn after a stall: %+v %v", o, err)
	}
	_, err = e.Step(context.Background(), &Episode{ID: "ep-crash", Turn: 4, Text: "crash"})
	for _, w := range []string{`environment "sh env.sh"`, `episode "ep-crash", turn 4`, "exited with status 3", "env: lost my state"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("crash: %v, want %q", err, w)
		}
	}
	_ = e.Close()

	e = openExecEnv(t)
	_, err = e.Step(context.Background(), &Episode{ID: "ep-g", Turn: 2, Text: "garbage"})
	if err == nil || !strings.Contains(err.Error(), `"turn 2" is not a JSON object`) {
		t.Errorf("non-JSON line: %v", err)
	}
	_ = e.Close()
}
