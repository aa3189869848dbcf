package extproc

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// Kind classifies an Error.
type Kind int

const (
	Timeout  Kind = iota + 1 // no response within the per-call timeout
	Remote                   // the process answered with "error"
	Protocol                 // the process broke the protocol (bad JSON, wrong id)
	Crash                    // the process exited or closed stdout early
)

func (k Kind) String() string {
	switch k {
	case Timeout:
		return "timeout"
	case Remote:
		return "error"
	case Protocol:
		return "protocol error"
	case Crash:
		return "crash"
	}
	return "unknown"
}

// Error is a failed call (or a failed process), naming the command and
// the request.
type Error struct {
	Kind    Kind
	What    string // "environment", "judge": what the process is to the user
	Command string
	Request string // the caller's label of the request ("" for the process as a whole)
	Msg     string
	Stderr  string // the tail of the process's stderr, for Crash and Protocol
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", e.What, e.Command)
	if e.Request != "" {
		fmt.Fprintf(&b, ", %s", e.Request)
	}
	fmt.Fprintf(&b, ": %s: %s", e.Kind, e.Msg)
	if t := strings.TrimSpace(e.Stderr); t != "" {
		b.WriteString("; its stderr ends with:\n    " + strings.ReplaceAll(t, "\n", "\n    "))
	}
	return b.String()
}

// IsTimeout reports whether err is a timed-out call.
func IsTimeout(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Timeout
}

// withRequest returns a copy of e naming request.
func (e *Error) withRequest(request string) *Error {
	c := *e
	c.Request = request
	return &c
}

// exitDescription says how a process ended.
func exitDescription(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err.Error()
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exited with status %d", ee.ExitCode())
}

// Tail is an io.Writer that keeps the last Max bytes written to it (a
// process's stderr, for error messages). Safe for concurrent use.
type Tail struct {
	Max int
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.Max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// String returns the bytes kept.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// clipLine shortens a stdout line for a message.
func clipLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}
