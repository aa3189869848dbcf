package extproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The test binary doubles as the child process: with EXTPROC_HELPER set it
// runs helper(mode) instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("EXTPROC_HELPER"); mode != "" {
		helper(mode)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper answers requests on stdin. Modes:
//
//	echo:    each request in its own goroutine; payload {"sleep_ms": n}
//	         sleeps n ms; the result is {"payload": ..., "inflight": k},
//	         k = requests being worked on when it started
//	badjson: answers the first request with a line that is not JSON
//	wrongid: answers with the request's id + 1000
//	twice:   answers every request twice
//	crash:   reads one request, prints to stderr, exits 3
//	error:   answers {"id": n, "error": "no such tool"}
func helper(mode string) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	var wmu sync.Mutex
	out := func(format string, args ...any) {
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	var inflight atomic.Int64
	for in.Scan() {
		var req struct {
			ID      int64           `json:"id"`
			Kind    string          `json:"kind"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad request:", err)
			os.Exit(2)
		}
		switch mode {
		case "echo":
			go func() {
				k := inflight.Add(1)
				var pl struct {
					SleepMS int `json:"sleep_ms"`
				}
				_ = json.Unmarshal(req.Payload, &pl)
				time.Sleep(time.Duration(pl.SleepMS) * time.Millisecond)
				inflight.Add(-1)
				out(`{"id":%d,"result":{"kind":%q,"payload":%s,"inflight":%d}}`, req.ID, req.Kind, req.Payload, k)
			}()
		case "badjson":
			out("thinking about request %d", req.ID)
		case "wrongid":
			out(`{"id":%d,"result":1}`, req.ID+1000)
		case "twice":
			out(`{"id":%d,"result":1}`, req.ID)
			out(`{"id":%d,"result":2}`, req.ID)
		case "crash":
			fmt.Fprintln(os.Stderr, "Traceback: KeyError 'answer'")
			os.Exit(3)
		case "error":
			out(`{"id":%d,"error":"no such tool"}`, req.ID)
		}
	}
	// EOF: exit at once, dropping requests still being worked on.
}

func start(t *testing.T, mode string, cfg Config) *Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.What = "judge"
	cfg.Command = fmt.Sprintf("'%s' -test.run=^$", exe)
	cfg.Env = append(os.Environ(), "EXTPROC_HELPER="+mode)
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConcurrentCalls: 32 calls of 200 ms each with Concurrency 8 run 8 at
// a time (never more in flight), each gets its own payload back, and the
// batch takes about 4 x 200 ms, not 32 x 200 ms.
func TestConcurrentCalls(t *testing.T) {
	p := start(t, "echo", Config{Concurrency: 8, Timeout: 5 * time.Second})
	t0 := time.Now()
	var wg sync.WaitGroup
	var maxIn atomic.Int64
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Call(context.Background(), "judge", fmt.Sprintf("rollout_id r-%d", i), map[string]any{"sleep_ms": 200, "i": i})
			if err != nil {
				errs <- err
				return
			}
			var r struct {
				Kind     string
				Payload  struct{ I int }
				Inflight int64
			}
			if err := json.Unmarshal(res, &r); err != nil || r.Payload.I != i || r.Kind != "judge" {
				errs <- fmt.Errorf("call %d got %s (%v)", i, res, err)
			}
			for {
				m := maxIn.Load()
				if r.Inflight <= m || maxIn.CompareAndSwap(m, r.Inflight) {
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	el := time.Since(t0)
	if m := maxIn.Load(); m > 8 || m < 2 {
		t.Errorf("max requests in flight %d, want 2..8", m)
	}
	if el > 3*time.Second {
		t.Errorf("32 calls of 200 ms with concurrency 8 took %s, want about 0.8 s", el)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if s := p.Stats(); s.Calls != 32 || s.Timeouts != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestStallCostsOnlyItsTimeout: one call stalls 10 s; with a 1 s timeout
// it returns a timeout after about 1 s while the other calls are answered
// at once, the process keeps serving, and Close drops the late answer.
func TestStallCostsOnlyItsTimeout(t *testing.T) {
	p := start(t, "echo", Config{Concurrency: 4, Timeout: time.Second})
	t0 := time.Now()
	var wg sync.WaitGroup
	var stallErr error
	var stallTook time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, stallErr = p.Call(context.Background(), "step", "episode 3, turn 2", map[string]any{"sleep_ms": 10000})
		stallTook = time.Since(t0)
	}()
	for i := range 20 {
		if _, err := p.Call(context.Background(), "step", fmt.Sprintf("episode %d, turn 0", i), map[string]any{"sleep_ms": 10}); err != nil {
			t.Fatalf("call %d next to a stalled one: %v", i, err)
		}
	}
	wg.Wait()
	if !IsTimeout(stallErr) {
		t.Fatalf("stalled call: %v, want a timeout", stallErr)
	}
	for _, want := range []string{`judge "`, "episode 3, turn 2", "timeout", "no response within 1s"} {
		if !strings.Contains(stallErr.Error(), want) {
			t.Errorf("timeout error %q lacks %q", stallErr, want)
		}
	}
	if stallTook < time.Second || stallTook > 2500*time.Millisecond {
		t.Errorf("the stalled call returned after %s, want its 1 s timeout", stallTook)
	}
	if _, err := p.Call(context.Background(), "step", "after", map[string]any{}); err != nil {
		t.Errorf("call after a timeout: %v", err)
	}
	if s := p.Stats(); s.Timeouts != 1 || s.Calls != 22 {
		t.Errorf("stats %+v, want 1 timeout of 22 calls", s)
	}
	t1 := time.Now()
	_ = p.Close()
	if d := time.Since(t1); d > time.Second {
		t.Errorf("Close took %s", d)
	}
}

// TestProtocolErrors: each way of breaking the protocol fails the call
// with an error naming the command, the request and the fault; the
// process is killed and later calls fail with the same error.
func TestProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		mode string
		kind Kind
		want []string
	}{
		{"badjson", Protocol, []string{"protocol error", `"thinking about request 1"`, "is not a JSON object", "stderr, not stdout"}},
		{"wrongid", Protocol, []string{"protocol error", "id 1001, which was never sent"}},
		{"crash", Crash, []string{"crash", "exited with status 3", "KeyError 'answer'"}},
		{"error", Remote, []string{"error: no such tool"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p := start(t, tc.mode, Config{Timeout: 5 * time.Second})
			_, err := p.Call(context.Background(), "judge", "rollout_id r-7", map[string]any{"x": 1})
			e, ok := err.(*Error)
			if !ok || e.Kind != tc.kind {
				t.Fatalf("got %v, want a %s", err, tc.kind)
			}
			for _, w := range append(tc.want, "rollout_id r-7", "-test.run") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			_, err2 := p.Call(context.Background(), "judge", "rollout_id r-8", nil)
			if tc.kind == Remote {
				if err2 == nil {
					t.Error("second call: no error")
				}
				if cerr := p.Close(); cerr != nil {
					t.Errorf("Close after an error answer: %v", cerr)
				}
				return
			}
			if err2 == nil || !strings.Contains(err2.Error(), "rollout_id r-8") || !strings.Contains(err2.Error(), e.Msg) {
				t.Errorf("call after the process broke: %v, want the same error naming r-8", err2)
			}
			if cerr := p.Close(); cerr == nil {
				t.Error("Close of a broken process returned nil")
			}
		})
	}
}

// TestAnsweredTwice: a second answer to the same id is a protocol error.
func TestAnsweredTwice(t *testing.T) {
	p := start(t, "twice", Config{Timeout: 5 * time.Second})
	if _, err := p.Call(context.Background(), "judge", "a", nil); err != nil {
		t.Fatalf("first answer: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	_, err := p.Call(context.Background(), "judge", "b", nil)
	if err == nil || !strings.Contains(err.Error(), "answers id 1 a second time") {
		t.Errorf("got %v, want a protocol error naming id 1", err)
	}
	_ = p.Close()
}

// TestShellChild: a plain sh loop that answers in order speaks the
// protocol; Close of a process that exits on EOF returns nil.
func TestShellChild(t *testing.T) {
	p, err := Start(context.Background(), Config{What: "judge", Timeout: 5 * time.Second,
		Command: `while IFS= read -r line; do id=${line#*'"id":'}; printf '{"id":%s,"result":{"reward":0.5}}\n' "${id%%,*}"; done`})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		res, err := p.Call(context.Background(), "judge", fmt.Sprint(i), map[string]string{"completion": "x"})
		if err != nil || string(res) != `{"reward":0.5}` {
			t.Fatalf("call %d: %s, %v", i, res, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestCommandNotFound: a command the shell cannot run is a crash naming
// it, with the shell's message.
func TestCommandNotFound(t *testing.T) {
	p, err := Start(context.Background(), Config{What: "environment", Command: "no-such-env-command --x", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Call(context.Background(), "reset", "episode 0, turn 0", nil)
	if err == nil || !strings.Contains(err.Error(), "exited with status 127") || !strings.Contains(err.Error(), "not found") ||
		!strings.Contains(err.Error(), `environment "no-such-env-command --x", episode 0, turn 0`) {
		t.Errorf("got %v", err)
	}
	_ = p.Close()
}

// TestTextAsWritten: payload text reaches the process without HTML
// escaping (a tool call "<call>1&2</call>" is sent as written).
func TestTextAsWritten(t *testing.T) {
	p, err := Start(context.Background(), Config{What: "environment", Timeout: 5 * time.Second,
		Command: `IFS= read -r line; case "$line" in *'"<call>1&2</call>"'*) r=true ;; *) r=false ;; esac; echo "{\"id\":1,\"result\":$r}"`})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Call(context.Background(), "step", "e", map[string]string{"text": "<call>1&2</call>"})
	if err != nil || string(res) != "true" {
		t.Errorf("got %s, %v: the request did not carry the text as written", res, err)
	}
	_ = p.Close()
}
