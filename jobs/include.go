package jobs

import (
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"

	"github.com/rljob/rljob/jobs/script"
)

// compiler turns a job file and the files it includes into Job.Stmts.
type compiler struct {
	reg  *Registry
	job  *Job
	hash hash.Hash // of the job file's bytes, then of each include's name and bytes
	// stack holds the absolute paths of the files being read (the job
	// file, then each INCLUDE on the way to the current one): a cycle is a
	// file that is already on it.
	stack []string
}

// file appends the statements of one file (the job file or an included
// one). Each file's loops must close in that file.
func (c *compiler) file(file, src string) error {
	stmts, err := script.Split(src)
	if err != nil {
		return scriptError(file, err, "")
	}
	var open []int // Job.Stmts indices of this file's open loop headers
	for _, st := range stmts {
		for cur := &st; cur != nil; {
			ctl, rest, err := script.ParseControl(*cur)
			if err != nil {
				return scriptError(file, err, cur.Text)
			}
			switch {
			case ctl == nil:
				s, err := compileStmt(c.reg, file, *cur)
				if err != nil {
					return err
				}
				c.add(s)
			case ctl.Kind == script.Include:
				if err := c.include(file, ctl, cur.Text); err != nil {
					return err
				}
			case ctl.Kind == script.While || ctl.Kind == script.For:
				text := cur.Text
				if rest != nil {
					text = strings.TrimSpace(cur.Text[:rest.Offset-cur.Offset])
				}
				l, err := newLoop(file, ctl, text)
				if err != nil {
					return err
				}
				l.Head = len(c.job.Stmts)
				c.add(Stmt{Pos: l.Pos, Text: text, Loop: l})
				open = append(open, l.Head)
			default: // END WHILE, END FOR
				pos := Pos{File: file, Line: ctl.Line, Col: ctl.Col}
				if err := c.closeLoop(open, ctl, pos, cur.Text); err != nil {
					return err
				}
				open = open[:len(open)-1]
			}
			cur = rest
		}
	}
	if len(open) > 0 {
		l := c.job.Stmts[open[len(open)-1]].Loop
		return &UsageError{Pos: l.Pos, Stmt: c.job.Stmts[l.Head].Text,
			Msg:  fmt.Sprintf("%s has no %s in %s", l.Kind, endOf(l.Kind), file),
			Hint: fmt.Sprintf("end the loop with %s; (a loop begins and ends in the same file)", endOf(l.Kind))}
	}
	return nil
}

func (c *compiler) add(s Stmt) {
	s.Index = len(c.job.Stmts)
	c.job.Stmts = append(c.job.Stmts, s)
}

// closeLoop matches an END WHILE / END FOR with the innermost open loop.
func (c *compiler) closeLoop(open []int, ctl *script.Control, pos Pos, text string) error {
	if len(open) == 0 {
		return &UsageError{Pos: pos, Stmt: text, Msg: ctl.Kind.String() + " without a loop to end",
			Hint: "remove it, or open the loop before it: WHILE <condition> DO ... END WHILE; or FOR i IN 1..10 DO ... END FOR;"}
	}
	l := c.job.Stmts[open[len(open)-1]].Loop
	if endOf(l.Kind) != ctl.Kind.String() {
		return &UsageError{Pos: pos, Stmt: text,
			Msg:  fmt.Sprintf("%s ends the %s loop at %s", ctl.Kind, l.Kind, l.Pos),
			Hint: fmt.Sprintf("write %s; (loops nest: the innermost one ends first)", endOf(l.Kind))}
	}
	if l.Head == len(c.job.Stmts)-1 {
		return &UsageError{Pos: l.Pos, Stmt: c.job.Stmts[l.Head].Text, Msg: fmt.Sprintf("%s loop has no statements", l.Kind),
			Hint: "put the statements to repeat between DO and " + endOf(l.Kind)}
	}
	l.End = len(c.job.Stmts)
	c.add(Stmt{Pos: pos, Text: text, Loop: l})
	return nil
}

func endOf(k script.ControlKind) string {
	if k == script.For {
		return script.EndFor.String()
	}
	return script.EndWhile.String()
}

// include reads the file an INCLUDE names (relative to the including
// file's folder) and appends its statements, refusing a missing file and a
// cycle.
func (c *compiler) include(from string, ctl *script.Control, text string) error {
	pos := Pos{File: from, Line: ctl.Line, Col: ctl.Col}
	path := ctl.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(from), path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return &UsageError{Pos: pos, Stmt: text, Msg: fmt.Sprintf("INCLUDE %q", ctl.Path), Err: err}
	}
	for i, f := range c.stack {
		if f == abs {
			chain := append(append([]string{}, c.stack[i:]...), abs)
			for j := range chain {
				chain[j] = relToWD(chain[j])
			}
			return &UsageError{Pos: pos, Stmt: text,
				Msg:  "include cycle: " + strings.Join(chain, " includes "),
				Hint: "a file cannot include itself, directly or through other files; move the shared statements into a file that includes nothing of these"}
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("INCLUDE %q: cannot read %s", ctl.Path, path)
		if errors.Is(err, os.ErrNotExist) {
			msg = fmt.Sprintf("INCLUDE %q: %s does not exist", ctl.Path, path)
		}
		return &UsageError{Pos: pos, Stmt: text, Msg: msg, Err: errWithoutPath(err),
			Hint: "an INCLUDE path is relative to the folder of the file that includes it (" + filepath.Dir(from) + ")"}
	}
	c.hash.Write([]byte("\x00INCLUDE " + ctl.Path + "\x00"))
	c.hash.Write(b)
	c.job.Includes = append(c.job.Includes, path)
	c.stack = append(c.stack, abs)
	defer func() { c.stack = c.stack[:len(c.stack)-1] }()
	return c.file(path, string(b))
}

// errWithoutPath drops the path an *os.PathError repeats.
func errWithoutPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func relToWD(abs string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return abs
}
