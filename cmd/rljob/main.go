// Command rljob runs RL post-training of language models as batch jobs over
// a Parquet data lake (see README.md and DESIGN.md).
//
// One file per command: cmd_run.go, cmd_sql.go, cmd_lake.go, cmd_stages.go,
// cmd_version.go. Errors are typed in package jobs and mapped to exit codes
// in one place, jobs.ExitCode:
//
//	0 ok, 1 internal error, I/O error (full disk) or a failed exec command,
//	2 usage or job-file error, 3 data error (missing column, corrupt file),
//	4 run locked, 130/143 interrupted by SIGINT/SIGTERM (rerun to resume).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/rljob/rljob/jobs"
	"github.com/rljob/rljob/kernels"
)

func main() {
	ctx, stop := signalContext(context.Background())
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// signalContext returns a context cancelled, with a *jobs.InterruptedError
// as its cause, on the first SIGINT or SIGTERM. The statement in progress
// then stops (a stage commits nothing of it) and Main exits 128+signal. A
// second signal gets the default action (the process dies at once), for a
// user who does not want to wait.
func signalContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			cancel(&jobs.InterruptedError{Signal: sig})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// interrupted returns the *jobs.InterruptedError that cancelled ctx, or nil.
func interrupted(ctx context.Context) *jobs.InterruptedError {
	if ctx.Err() == nil {
		return nil
	}
	var ie *jobs.InterruptedError
	if errors.As(context.Cause(ctx), &ie) {
		return ie
	}
	return nil
}

// env is what a command sees of the process: streams, environment, whether
// stderr is a terminal, and the logger built from the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool
	stdoutTTY      bool
	log            zerolog.Logger
	g              *globals
}

// globals are the flags every command takes.
type globals struct {
	lake      string
	logFormat string
	logLevel  string
}

func addGlobals(fs *pflag.FlagSet, g *globals, getenv func(string) string) {
	def := getenv("RLJOB_LAKE")
	if def == "" {
		def = "./lake"
	}
	fs.StringVar(&g.lake, "lake", def, "lake directory (env RLJOB_LAKE, else ./lake)")
	fs.StringVar(&g.logFormat, "log-format", "auto", "log format: auto (console on a terminal, else json), console, json")
	fs.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// command is one subcommand.
type command struct {
	name  string
	usage string // after "rljob <name>"
	short string
	// flags adds the command's own flags.
	flags func(fs *pflag.FlagSet)
	run   func(ctx context.Context, e *env, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

const exitCodes = `Exit codes:
  0    ok
  1    internal error, I/O error (disk full, EIO; the path is named), or an exec stage's command failed
  2    usage or job-file error (bad flag, unknown stage or argument, SQL error, estimated memory too large)
  3    data error (missing column, NaN or corrupt input, corrupt Parquet file, lake verify problem)
  4    the run is locked by another runner
  130  interrupted by SIGINT (143: SIGTERM): rerun the same command to resume from the last complete step
`

func usage(w io.Writer) {
	fmt.Fprint(w, "rljob runs RL post-training of language models as batch jobs over a Parquet data lake.\n\nUsage:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  rljob %-8s %s\n", n, c.short)
	}
	fmt.Fprint(w, "\nRun 'rljob <command> --help' for a command's flags.\n\n")
	fmt.Fprint(w, exitCodes)
}

// Main runs rljob with args (without the program name) and returns the exit
// code. Tests call it in-process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		stderrTTY: isTTY(stderr), stdoutTTY: isTTY(stdout)}
	err := dispatch(ctx, e, args)
	if err != nil && !errors.Is(err, errHelp) {
		var ie *jobs.InterruptedError
		if sig := interrupted(ctx); sig != nil && !errors.As(err, &ie) {
			stopped := *sig
			if len(args) == 0 || args[0] != "run" {
				stopped.Hint = "the command stopped early; rerun it"
			}
			err = &stopped
		}
		err = jobs.AsIOError(err)
	}
	code := jobs.ExitCode(err)
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintf(stderr, "rljob: %v\n", err)
	}
	if errors.Is(err, errHelp) {
		code = 0
	}
	return code
}

// errHelp is returned after --help output: exit 0, nothing more printed.
var errHelp = errors.New("help requested")

func dispatch(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		usage(e.stderr)
		return &jobs.UsageError{Msg: "no command given"}
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		usage(e.stdout)
		return errHelp
	case "--version", "-v":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		var names []string
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		return &jobs.UsageError{Msg: fmt.Sprintf("unknown command %q", name), Hint: "commands: " + strings.Join(names, ", ") + " (rljob --help)"}
	}
	fs := pflag.NewFlagSet("rljob "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	g := &globals{}
	if c.flags != nil {
		c.flags(fs)
	}
	addGlobals(fs, g, e.getenv)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: rljob %s %s\n\n%s\n\nFlags:\n%s\n%s", c.name, c.usage, c.short, fs.FlagUsages(), exitCodes)
			return errHelp
		}
		return &jobs.UsageError{Msg: err.Error(), Hint: fmt.Sprintf("usage: rljob %s %s (rljob %s --help)", c.name, c.usage, c.name)}
	}
	log, err := newLogger(e.stderr, g.logFormat, g.logLevel, e.stderrTTY)
	if err != nil {
		return err
	}
	if err := useKernelSet(e.getenv("RLJOB_KERNELS")); err != nil {
		return err
	}
	if err := useBF16Dot(e.getenv("RLJOB_BF16_DOT")); err != nil {
		return err
	}
	e.log, e.g = log, g
	return c.run(ctx, e, fs.Args())
}

// useKernelSet selects the kernel set RLJOB_KERNELS names (go, avx2,
// avx512), or the best this CPU has when it is empty. The set changes the
// speed, never the numbers (kernels/kernelset.go).
func useKernelSet(name string) error {
	sets := kernels.KernelSets()
	if name == "" {
		name = sets[len(sets)-1]
	}
	if err := kernels.UseKernelSet(name); err != nil {
		return &jobs.UsageError{Msg: "RLJOB_KERNELS: " + err.Error(), Hint: "unset RLJOB_KERNELS to use the best set, or name one of " + strings.Join(sets, ", ")}
	}
	return nil
}

// useBF16Dot makes bf16's products run on the dot product RLJOB_BF16_DOT
// names (fma, vdpbf16ps), or the faster on this CPU when it is empty. The
// choice changes the speed, never the numbers (kernels/bf16dot_cgo.go).
func useBF16Dot(name string) error {
	if err := kernels.UseBF16Dot(name); err != nil {
		return &jobs.UsageError{Msg: "RLJOB_BF16_DOT: " + err.Error(),
			Hint: "unset RLJOB_BF16_DOT to use the faster, or name one of " + strings.Join(kernels.BF16Dots(), ", ")}
	}
	return nil
}

// checkLakeFlag checks the --lake path before a command uses it: a path
// that exists must be a folder, and one that does not must lie under a
// folder (run creates it); with mustExist, a missing lake is an error too.
// Every command reports these the same way: a usage error, exit 2.
func checkLakeFlag(p string, mustExist bool) error {
	hint := "give the lake's folder with --lake DIR (or set RLJOB_LAKE)"
	st, err := os.Stat(p)
	switch {
	case err == nil && !st.IsDir():
		return &jobs.UsageError{Msg: fmt.Sprintf("--lake %s is a %s, not a folder", p, fileKind(st.Mode())), Hint: hint}
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return &jobs.UsageError{Msg: fmt.Sprintf("--lake %s cannot be used", p), Err: err, Hint: hint}
	case mustExist:
		return &jobs.UsageError{Msg: fmt.Sprintf("lake %s does not exist", p), Hint: hint}
	}
	// Missing: the nearest existing ancestor must be a folder.
	for dir := filepath.Dir(filepath.Clean(p)); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return &jobs.UsageError{Msg: fmt.Sprintf("--lake %s lies under %s, which is a %s, not a folder", p, dir, fileKind(st.Mode())), Hint: hint}
			}
			return nil
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

func fileKind(m os.FileMode) string {
	if m.IsRegular() {
		return "regular file"
	}
	return "file of type " + m.Type().String()
}

// newLogger builds the zerolog logger: console (human-readable, coloured)
// on a terminal, JSON lines otherwise, unless format says which.
func newLogger(w io.Writer, format, level string, tty bool) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), &jobs.UsageError{Msg: fmt.Sprintf("bad --log-level %q", level), Hint: "one of debug, info, warn, error"}
	}
	switch format {
	case "auto":
		if tty {
			format = "console"
		} else {
			format = "json"
		}
	case "console", "json":
	default:
		return zerolog.Nop(), &jobs.UsageError{Msg: fmt.Sprintf("bad --log-format %q", format), Hint: "one of auto, console, json"}
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05", NoColor: !tty}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTTY reports whether w is a terminal.
func isTTY(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
