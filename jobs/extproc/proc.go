package extproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Config says what to run and how to bound it.
type Config struct {
	What        string        // what the process is, for messages: "environment", "judge"
	Command     string        // run with sh -c
	Dir         string        // working folder ("" = the current one)
	Env         []string      // the process's environment (nil = os.Environ())
	Concurrency int           // requests in flight at once (<= 0: DefaultConcurrency)
	Timeout     time.Duration // per call, from sending the request (<= 0: DefaultTimeout)
	Stderr      io.Writer     // where the process's stderr is copied (nil: kept only for errors)
}

// Defaults for Config's zero values.
const (
	DefaultConcurrency = 16
	DefaultTimeout     = 60 * time.Second
	// closeGrace is how long Close waits for the process to exit after
	// closing its stdin, and then after SIGTERM, before SIGKILL.
	closeGrace = 5 * time.Second
)

// Stats counts what happened to a process's calls.
type Stats struct {
	Calls    int64 // requests sent
	Timeouts int64 // calls that timed out
	Errors   int64 // calls answered with "error"
	Late     int64 // responses that came after their call timed out (dropped)
}

// Proc is a running process. Its methods are safe for concurrent use.
type Proc struct {
	cfg    Config
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *Tail
	sem    chan struct{}
	wmu    sync.Mutex    // serialises request lines on stdin
	done   chan struct{} // closed once the process has exited and dead is set

	mu      sync.Mutex
	next    int64
	pending map[int64]chan reply
	late    map[int64]bool // ids whose call timed out: a response is dropped
	dead    *Error         // why calls fail from now on (nil while healthy)
	closing bool
	stats   Stats
}

type reply struct {
	result json.RawMessage
	err    *Error
}

// Start runs cfg.Command (sh -c, in its own process group, so that killing
// it kills what it started).
func Start(ctx context.Context, cfg Config) (*Proc, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.What == "" {
		cfg.What = "process"
	}
	p := &Proc{cfg: cfg, stderr: &Tail{Max: 4096}, sem: make(chan struct{}, cfg.Concurrency),
		done: make(chan struct{}), pending: map[int64]chan reply{}, late: map[int64]bool{}}
	cmd := exec.CommandContext(ctx, "sh", "-c", cfg.Command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = closeGrace
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	var errW io.Writer = p.stderr
	if cfg.Stderr != nil {
		errW = io.MultiWriter(p.stderr, cfg.Stderr)
	}
	// Our own pipes, not exec's: Wait then returns when the process exits,
	// even while something it started still holds stdout or stderr open.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, p.errorf(Crash, "", "%v", err)
	}
	errR, errPW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, p.errorf(Crash, "", "%v", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errPW
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	outW.Close()
	errPW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, p.errorf(Crash, "", "cannot start: %v", err)
	}
	p.cmd, p.stdin = cmd, stdin
	stderrDone, readDone := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = io.Copy(errW, errR)
		errR.Close()
		close(stderrDone)
	}()
	go func() {
		p.read(outR)
		outR.Close()
		close(readDone)
	}()
	go p.supervise(readDone, stderrDone)
	return p, nil
}

func (p *Proc) errorf(k Kind, request, format string, args ...any) *Error {
	return &Error{Kind: k, What: p.cfg.What, Command: p.cfg.Command, Request: request, Msg: fmt.Sprintf(format, args...)}
}

// Call sends one request and waits for its response, at most the
// configured timeout after sending it. request labels the call in errors
// ("episode 3, turn 2"). A timed-out call returns an *Error of Kind
// Timeout and leaves the process running.
func (p *Proc) Call(ctx context.Context, kind, request string, payload any) (json.RawMessage, error) {
	select {
	case p.sem <- struct{}{}:
	case <-p.done:
		return nil, p.deadErr().withRequest(request)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.sem }()
	body, err := encode(payload)
	if err != nil {
		return nil, fmt.Errorf("extproc: %s: encode the payload: %w", request, err)
	}
	ch := make(chan reply, 1)
	p.mu.Lock()
	if p.dead != nil {
		p.mu.Unlock()
		return nil, p.dead.withRequest(request)
	}
	p.next++
	id := p.next
	p.pending[id] = ch
	p.stats.Calls++
	p.mu.Unlock()
	kindJSON, _ := encode(kind)
	line := fmt.Appendf(nil, `{"id":%d,"kind":%s,"payload":%s}`+"\n", id, kindJSON, body)
	go p.send(id, line)

	timer := time.NewTimer(p.cfg.Timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err.withRequest(request)
		}
		return r.result, nil
	case <-timer.C:
		p.abandon(id, true)
		return nil, p.errorf(Timeout, request, "no response within %s (request id %d; the process keeps running and a late response is dropped)", p.cfg.Timeout, id)
	case <-ctx.Done():
		p.abandon(id, false)
		return nil, ctx.Err()
	}
}

// encode is json.Marshal without HTML escaping: text reaches the process
// as written ("<call>", not "\u003ccall\u003e").
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// send writes one request line; a failed write fails that call. A write
// usually fails because the process is exiting (a broken pipe: a command
// not found exits at once): send then waits up to sendGrace for the exit,
// whose error (status, stderr) supervise gives every pending call, so the
// message says why the process died rather than that the pipe broke.
func (p *Proc) send(id int64, line []byte) {
	p.wmu.Lock()
	_, err := p.stdin.Write(line)
	p.wmu.Unlock()
	if err == nil {
		return
	}
	select {
	case <-p.done:
		return // supervise failed the call with the exit's error
	case <-time.After(min(sendGrace, p.cfg.Timeout)):
	}
	p.deliver(id, reply{err: p.errorf(Crash, "", "cannot write the request to its stdin: %v", err)})
}

// sendGrace is how long a failed write waits for the process's exit.
const sendGrace = 2 * time.Second

// abandon forgets a pending call whose caller stopped waiting.
func (p *Proc) abandon(id int64, timedOut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[id]; ok {
		delete(p.pending, id)
		p.late[id] = true
		if timedOut {
			p.stats.Timeouts++
		}
	}
}

// deliver hands r to the pending call id, if it is still waiting.
func (p *Proc) deliver(id int64, r reply) {
	p.mu.Lock()
	ch, ok := p.pending[id]
	delete(p.pending, id)
	p.mu.Unlock()
	if ok {
		ch <- r
	}
}

// response is one stdout line.
type response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// read dispatches stdout lines to their calls until stdout closes.
func (p *Proc) read(stdout io.Reader) {
	br := bufio.NewReaderSize(stdout, 1<<16)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && !p.isDead() {
			p.handle(line)
		}
		if err != nil {
			return
		}
	}
}

// exitDrain is how long, after the process exits, its stdout and stderr
// may stay open (held by something it started) before its process group
// is killed: the answers it wrote before exiting are read meanwhile.
const exitDrain = 500 * time.Millisecond

// supervise waits for the process to exit, then for its output to drain,
// and fails whatever is still pending.
func (p *Proc) supervise(readDone, stderrDone chan struct{}) {
	werr := p.cmd.Wait()
	for _, ch := range []chan struct{}{readDone, stderrDone} {
		select {
		case <-ch:
		case <-time.After(exitDrain):
			p.kill(syscall.SIGKILL)
			<-ch
		}
	}
	p.kill(syscall.SIGKILL) // what it left behind
	p.mu.Lock()
	if p.dead == nil {
		if p.closing {
			p.dead = p.errorf(Crash, "", "the process was closed")
		} else {
			p.dead = p.errorf(Crash, "", "the process %s before answering (it must keep reading requests until its stdin closes)", exitDescription(werr))
			p.dead.Stderr = p.stderr.String()
		}
	}
	p.failPendingLocked()
	p.mu.Unlock()
	close(p.done)
}

// handle routes one response line, or fails the process on a protocol
// violation.
func (p *Proc) handle(line []byte) {
	var r response
	if err := json.Unmarshal(line, &r); err != nil {
		p.fail(p.errorf(Protocol, "", "stdout line %s is not a JSON object (%v); print diagnostics to stderr, not stdout", clipLine(line), err))
		return
	}
	id, err := strconv.ParseInt(string(r.ID), 10, 64)
	if err != nil {
		p.fail(p.errorf(Protocol, "", "response %s has no integer \"id\" (echo the request's id)", clipLine(line)))
		return
	}
	p.mu.Lock()
	ch, ok := p.pending[id]
	delete(p.pending, id)
	wasLate := p.late[id]
	delete(p.late, id)
	if wasLate {
		p.stats.Late++
	}
	issued := id >= 1 && id <= p.next
	p.mu.Unlock()
	switch {
	case wasLate:
		return
	case !ok && !issued:
		p.fail(p.errorf(Protocol, "", "response %s has id %d, which was never sent (wrong id?)", clipLine(line), id))
		return
	case !ok:
		p.fail(p.errorf(Protocol, "", "response %s answers id %d a second time", clipLine(line), id))
		return
	}
	switch {
	case r.Error != nil && string(r.Error) != "null":
		msg := string(r.Error)
		var s string
		if json.Unmarshal(r.Error, &s) == nil {
			msg = s
		}
		p.mu.Lock()
		p.stats.Errors++
		p.mu.Unlock()
		ch <- reply{err: p.errorf(Remote, "", "%s", msg)}
	case r.Result != nil:
		ch <- reply{result: r.Result}
	default:
		ch <- reply{err: p.errorf(Protocol, "", "response %s has neither \"result\" nor \"error\"", clipLine(line))}
	}
}

func (p *Proc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead != nil
}

func (p *Proc) deadErr() *Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// fail marks the process broken with e, fails every pending call, and
// kills it.
func (p *Proc) fail(e *Error) {
	e.Stderr = p.stderr.String()
	p.mu.Lock()
	if p.dead == nil {
		p.dead = e
	}
	p.failPendingLocked()
	p.mu.Unlock()
	p.kill(syscall.SIGKILL)
}

func (p *Proc) failPendingLocked() {
	for id, ch := range p.pending {
		ch <- reply{err: p.dead}
		delete(p.pending, id)
	}
}

func (p *Proc) kill(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// Stats returns the call counts so far.
func (p *Proc) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close closes the process's stdin and waits for it to exit: up to
// closeGrace, then SIGTERM, then after another closeGrace SIGKILL (to its
// whole process group). When calls timed out and their answers never
// came, the process is presumably stuck on them: it gets SIGTERM at once.
// Close returns nil when the process exited with status 0 on its own (or
// was stopped for such calls), the error that broke it, or an error saying
// how it ended otherwise. Pending calls fail.
func (p *Proc) Close() error {
	p.mu.Lock()
	p.closing = true
	dead, stuck := p.dead, len(p.late) > 0
	p.mu.Unlock()
	if dead != nil {
		<-p.done
		if dead.Kind == Protocol || dead.Kind == Crash && dead.Msg != "the process was closed" {
			return dead
		}
		return nil
	}
	p.wmu.Lock()
	_ = p.stdin.Close()
	p.wmu.Unlock()
	steps := []syscall.Signal{0, syscall.SIGTERM, syscall.SIGKILL}
	if stuck {
		steps = steps[1:]
	}
	for _, sig := range steps {
		if sig != 0 {
			p.kill(sig)
		}
		select {
		case <-p.done:
			switch {
			case stuck:
				return nil
			case sig != 0:
				return p.errorf(Crash, "", "did not exit within %s of its stdin closing; sent %s", closeGrace, sig)
			}
			if st := p.cmd.ProcessState; st != nil && !st.Success() {
				e := p.errorf(Crash, "", "%s after its stdin closed", st.String())
				e.Stderr = p.stderr.String()
				return e
			}
			return nil
		case <-time.After(closeGrace):
		}
	}
	<-p.done
	return nil
}
