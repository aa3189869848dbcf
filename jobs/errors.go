package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"unicode/utf8"

	rsql "github.com/rljob/rljob/sql"
)

// Pos is a position in a job file: 1-based line and column. A zero Line
// means "no position" (for example an error found on the command line).
type Pos struct {
	File      string
	Line, Col int
}

// String renders "file:line:col", or just the file when the line is unknown.
func (p Pos) String() string {
	switch {
	case p.File == "" && p.Line == 0:
		return ""
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// UsageError is a mistake in the command line or the job file: a bad flag,
// an unknown stage or argument, a SQL syntax error. cmd/rljob maps it to exit
// code 2. Stmt, when set, is the offending statement; Hint says how to fix it.
type UsageError struct {
	Pos  Pos
	Msg  string
	Stmt string
	Hint string
	Err  error
}

func (e *UsageError) Error() string { return formatError(e.Pos, e.Msg, e.Stmt, e.Hint, e.Err) }
func (e *UsageError) Unwrap() error { return e.Err }

// DataError is a problem with the data rather than the job: a required
// column missing from an input table, a corrupt Parquet file, a malformed
// row. cmd/rljob maps it to exit code 3. Table, Column and File name the
// culprit where known.
type DataError struct {
	Pos    Pos
	Msg    string
	Table  string
	Column string
	File   string
	Stmt   string
	Hint   string
	Err    error
}

func (e *DataError) Error() string { return formatError(e.Pos, e.Msg, e.Stmt, e.Hint, e.Err) }
func (e *DataError) Unwrap() error { return e.Err }

// LockError says another runner holds the run's lock. cmd/rljob maps it to
// exit code 4. Holder is the lock file's content: pid, host, start time.
type LockError struct {
	Lock   string // path of the lock file
	Run    string
	Holder string
	Hint   string // "" : wait for it to finish, or use another --run
	// What names what is locked when it is not a run ("the lake's
	// compaction"); Run is then empty.
	What string
}

func (e *LockError) Error() string {
	h := strings.TrimSpace(e.Holder)
	if h == "" {
		h = "unknown holder"
	}
	if e.What != "" {
		return fmt.Sprintf("%s is locked by another process (%s); lock file %s\n  hint: %s", e.What, h, e.Lock, e.Hint)
	}
	hint := e.Hint
	if hint == "" {
		hint = "wait for it to finish, or use another --run"
	}
	return fmt.Sprintf("run %q is locked by another runner (%s); lock file %s\n  hint: %s", e.Run, strings.ReplaceAll(h, "\n", ", "), e.Lock, hint)
}

// IOError is a failure of the storage rather than of the job or the data:
// a full disk (ENOSPC), a quota (EDQUOT), a read-only file system (EROFS), a
// file over the size limit (EFBIG) or a device error (EIO). cmd/rljob maps
// it to exit code 1, like any other error that is not the user's. Path
// names the file or folder being read or written when it is known.
type IOError struct {
	Path string
	Err  error
}

func (e *IOError) Error() string {
	where := e.Path
	if where == "" {
		where = "the lake's file system"
	}
	return fmt.Sprintf("I/O error on %s: %v\n  hint: make room on the file system holding %s (free space, raise the quota or file-size limit) or repair it, then rerun the same command: it resumes from the last complete step", where, e.Err, where)
}

func (e *IOError) Unwrap() error { return e.Err }

// ioErrnos are the errors that make an error an I/O error wherever they are
// wrapped.
var ioErrnos = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, syscall.EFBIG}

// ioMessages are how DuckDB (which does not wrap errnos) spells them.
var ioMessages = []string{"No space left on device", "Disk quota exceeded", "Input/output error", "Read-only file system", "File too large"}

// IsIOError reports whether err is, or wraps, a storage failure (see
// IOError), including one DuckDB reported as text.
func IsIOError(err error) bool {
	if err == nil {
		return false
	}
	var ie *IOError
	if errors.As(err, &ie) {
		return true
	}
	for _, e := range ioErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	if rsql.IsDuckDBError(err) {
		_, msg := rsql.Classify(err)
		for _, m := range ioMessages {
			if strings.Contains(msg, m) {
				return true
			}
		}
	}
	return false
}

// AsIOError returns err as an *IOError (naming the path from the innermost
// *fs.PathError or *os.LinkError, else a quoted path in DuckDB's message)
// when it is a storage failure that is not one already; otherwise err.
func AsIOError(err error) error {
	var ie *IOError
	if !IsIOError(err) || errors.As(err, &ie) {
		return err
	}
	var (
		pe *fs.PathError
		le *os.LinkError
	)
	switch {
	case errors.As(err, &pe):
		return &IOError{Path: pe.Path, Err: err}
	case errors.As(err, &le):
		return &IOError{Path: le.New, Err: err}
	case rsql.IsDuckDBError(err):
		_, msg := rsql.Classify(err)
		return &IOError{Path: quotedPath(msg), Err: err}
	}
	return &IOError{Err: err}
}

// quotedPath returns the first "..." or '...' quoted text containing a '/'.
func quotedPath(msg string) string {
	for _, q := range []string{`"`, "'"} {
		rest := msg
		for {
			i := strings.Index(rest, q)
			if i < 0 {
				break
			}
			j := strings.Index(rest[i+1:], q)
			if j < 0 {
				break
			}
			if f := rest[i+1 : i+1+j]; strings.Contains(f, "/") {
				return f
			}
			rest = rest[i+1+j+1:]
		}
	}
	return ""
}

// InterruptedError says the run was stopped by a signal (SIGINT, SIGTERM):
// the statement in progress was abandoned (a stage commits nothing of it)
// and the lake holds every step completed before. cmd/rljob maps it to exit
// code 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell
// does. Step, when HasStep, is the step that was in progress.
type InterruptedError struct {
	Signal  os.Signal
	Step    int64
	HasStep bool
	Hint    string // "" = how to resume a run
}

func (e *InterruptedError) Error() string {
	name := "a signal"
	if e.Signal != nil {
		name = signalName(e.Signal)
	}
	msg := "interrupted by " + name + ": the statement in progress was stopped and nothing of it was committed"
	if e.HasStep {
		msg += fmt.Sprintf("; step %d is incomplete", e.Step)
	}
	hint := e.Hint
	if hint == "" {
		hint = "rerun the same command to resume from the last complete step (calls already committed in the incomplete step are skipped)"
	}
	return msg + "\n  hint: " + hint
}

// Code is the exit code for the signal: 128 + its number, else 1.
func (e *InterruptedError) Code() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// signalName renders SIGTERM, SIGINT, ... with the number.
func signalName(s os.Signal) string {
	if n, ok := s.(syscall.Signal); ok {
		if name := unixSignalNames[n]; name != "" {
			return fmt.Sprintf("%s (signal %d)", name, int(n))
		}
		return fmt.Sprintf("signal %d (%v)", int(n), n)
	}
	return s.String()
}

// SignalName names a signal the way a user looks it up: "SIGKILL (signal 9)".
func SignalName(s os.Signal) string { return signalName(s) }

var unixSignalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGILL: "SIGILL",
	syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE",
	syscall.SIGKILL: "SIGKILL", syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM", syscall.SIGXCPU: "SIGXCPU",
	syscall.SIGXFSZ: "SIGXFSZ",
}

// maxEcho bounds how much of a statement an error message repeats: a
// generated 10 MB statement is named by its position, not printed whole.
const maxEcho = 300

// clip shortens s to about maxEcho characters (on a rune boundary), saying
// how much was left out.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d more bytes)", len(s)-cut)
}

// formatError renders
//
//	file:line:col: msg
//	    <statement, indented>
//	  hint: ...
//	  cause: ...
//
// The statement, the message and the cause are each clipped to about
// maxEcho bytes (a message's first line is kept whole up to 4 maxEcho).
func formatError(p Pos, msg, stmt, hint string, err error) string {
	var b strings.Builder
	if s := p.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	b.WriteString(clipMsg(msg))
	if err != nil && !strings.Contains(msg, err.Error()) {
		b.WriteString(": ")
		b.WriteString(clipMsg(err.Error()))
	}
	if stmt = clip(strings.TrimSpace(stmt)); stmt != "" {
		b.WriteString("\n  in statement:\n")
		for _, l := range strings.Split(stmt, "\n") {
			b.WriteString("    ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		s := strings.TrimRight(b.String(), "\n")
		b.Reset()
		b.WriteString(s)
	}
	if hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(hint)
	}
	return b.String()
}

// clipMsg keeps a message readable when it quotes a huge statement: each
// line is clipped to 4*maxEcho bytes, and at most 20 lines are kept.
func clipMsg(msg string) string {
	if len(msg) <= 4*maxEcho {
		return msg
	}
	lines := strings.Split(msg, "\n")
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… (%d more lines)", len(lines)-20))
	}
	for i, l := range lines {
		if len(l) > 4*maxEcho {
			cut := 4 * maxEcho
			for cut > 0 && !utf8.RuneStart(l[cut]) {
				cut--
			}
			lines[i] = l[:cut] + fmt.Sprintf("… (%d more bytes)", len(l)-cut)
		}
	}
	return strings.Join(lines, "\n")
}

// ExitCode maps an error to rljob's exit code. It is the one switch the CLI
// uses (and documents in --help):
//
//	0 ok, 1 internal error or I/O error (full disk, EIO: see IOError),
//	2 usage or job-file error, 3 data error, 4 lock held,
//	128+N interrupted by signal N (130 SIGINT, 143 SIGTERM).
//
// An I/O error is 1 whatever wraps it: a full disk is never the job file's
// fault nor the data's.
func ExitCode(err error) int {
	var (
		le *LockError
		ie *InterruptedError
		ue *UsageError
		de *DataError
	)
	switch {
	case err == nil:
		return 0
	case errors.As(err, &le):
		return 4
	case errors.As(err, &ie):
		return ie.Code()
	case IsIOError(err):
		return 1
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &de):
		return 3
	default:
		return 1
	}
}

// ClassifySQL turns an error returned by DuckDB for a statement of a job file
// (or of `rljob sql`) into a typed error with the statement's position.
//
// Parser, binder and catalog errors are the job's fault (UsageError); I/O,
// invalid-input (a corrupt Parquet file), conversion and range errors are the
// data's (DataError). Anything else stays a UsageError too: the statement is
// the user's. Interruptions (context cancelled) are returned unchanged, and
// storage failures (a full disk, EIO: see IOError) become an *IOError, exit
// code 1, whether DuckDB or the commit that follows reported them.
func ClassifySQL(err error, pos Pos, stmt string) error {
	if err == nil {
		return nil
	}
	var ue *UsageError
	var de *DataError
	if errors.As(err, &ue) || errors.As(err, &de) {
		return err
	}
	kind, msg := rsql.Classify(err)
	if IsIOError(err) {
		return AsIOError(err)
	}
	head, _, _ := strings.Cut(msg, "\n")
	at := errorPos(pos, stmt, msg)
	switch kind {
	case rsql.KindData:
		return &DataError{Pos: at, Msg: head, Stmt: stmt, File: quotedFile(head)}
	case rsql.KindInterrupt:
		return err
	}
	if kind == rsql.KindOther && strings.Contains(msg, "context canceled") {
		return err
	}
	hint := ""
	if _, rest, ok := strings.Cut(msg, "\nDid you mean "); ok {
		hint = "did you mean " + strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0])
	}
	return &UsageError{Pos: at, Msg: head, Stmt: stmt, Hint: hint}
}

// quotedFile returns the first '...' quoted path in a DuckDB message such as
// "No magic bytes found at end of file '/lake/t/x.parquet'".
func quotedFile(msg string) string {
	i := strings.Index(msg, "'")
	if i < 0 {
		return ""
	}
	j := strings.Index(msg[i+1:], "'")
	if j < 0 {
		return ""
	}
	f := msg[i+1 : i+1+j]
	if strings.Contains(f, "/") || strings.HasSuffix(f, ".parquet") {
		return f
	}
	return ""
}

// errorPos refines the statement's start position with DuckDB's
// "LINE n: <text>\n        ^" marker when the message has one. The marker's
// line is relative to the statement; DuckDB may elide the start of a long
// line with "...", so the displayed text is searched for in the real line.
func errorPos(start Pos, stmt, msg string) Pos {
	i := strings.Index(msg, "\nLINE ")
	if i < 0 {
		if strings.Contains(msg, "at end of input") && stmt != "" {
			lines := strings.Split(strings.TrimRight(stmt, " \t\n;"), "\n")
			p := start
			p.Line = start.Line + len(lines) - 1
			if len(lines) == 1 {
				p.Col = start.Col + len(lines[0])
			} else {
				p.Col = len(lines[len(lines)-1]) + 1
			}
			return p
		}
		return start
	}
	rest := msg[i+1:]
	var n int
	if _, err := fmt.Sscanf(rest, "LINE %d:", &n); err != nil || n < 1 {
		return start
	}
	shown, caretLine, ok := strings.Cut(rest, "\n")
	if !ok {
		return start
	}
	prefix := fmt.Sprintf("LINE %d: ", n)
	caret := strings.Index(caretLine, "^")
	if caret < len(prefix) || !strings.HasPrefix(shown, prefix) {
		return start
	}
	shown = shown[len(prefix):]
	col := caret - len(prefix) // 0-based in the shown text
	lines := strings.Split(stmt, "\n")
	if n > len(lines) {
		return start
	}
	real := lines[n-1]
	if strings.HasPrefix(shown, "...") {
		if k := strings.Index(real, strings.TrimSuffix(shown[3:], "...")); k >= 0 {
			col = k + col - 3
		}
	}
	p := start
	p.Line = start.Line + n - 1
	if n == 1 {
		p.Col = start.Col + col
	} else {
		p.Col = col + 1
	}
	return p
}
