package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCapacityWarning(t *testing.T) {
	const sinfo = "debug* 0/2/0/2\ngpu 4/4/0/8\nbig 0/64/0/64\n"
	for _, tc := range []struct {
		name string
		a    arrayCapacity
		out  string
		want string // "" = no warning
	}{
		{"fits the default partition", arrayCapacity{Tasks: 2, CPUsPerTask: 1}, sinfo, ""},
		{"4 tasks on 2 CPUs", arrayCapacity{File: "grpo.sql", Tasks: 4, CPUsPerTask: 1}, sinfo,
			"grpo.sql is an array of 4 tasks × 1 CPUs = 4 CPUs that run in lockstep (each waits for all the others at every step), but partition debug has 2 CPUs in all"},
		{"cpus-per-task counts", arrayCapacity{File: "g", Tasks: 2, CPUsPerTask: 8, Partition: "gpu"}, sinfo, "Use at most 1 tasks (:--array=0-0)"},
		{"named partition fits", arrayCapacity{Tasks: 8, CPUsPerTask: 8, Partition: "big"}, sinfo, ""},
		{"unknown partition: no claim", arrayCapacity{Tasks: 99, CPUsPerTask: 1, Partition: "nosuch"}, sinfo, ""},
		{"sinfo said nothing", arrayCapacity{Tasks: 99, CPUsPerTask: 1}, "", ""},
		{"garbage", arrayCapacity{Tasks: 99, CPUsPerTask: 1}, "debug* x/y\nfoo\n", ""},
		{"nodes of a partition add up", arrayCapacity{Tasks: 3, CPUsPerTask: 1}, "debug* 0/2/0/2\ndebug* 0/2/0/2\n", ""},
	} {
		got := capacityWarning(tc.a, tc.out)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	j := &plannedJob{pipelineFile: pipelineFile{Path: "g.sql", Array: "2-5", Sbatch: []string{"--cpus-per-task=4", "--partition=gpu"}}}
	if a, ok := arrayOf(j, []string{"--partition=debug", "--cpus-per-task=2"}); !ok || a != (arrayCapacity{File: "g.sql", Tasks: 4, CPUsPerTask: 4, Partition: "gpu"}) {
		t.Errorf("arrayOf: %+v %v", a, ok)
	}
}

// TestSlurmSubmitChecks: submit warns (through sinfo) when the array needs
// more CPUs than the partition has, and refuses a pipeline with a file
// that does not compile before submitting anything.
func TestSlurmSubmitChecks(t *testing.T) {
	state := fakeSlurm(t)
	dir := filepath.Join(t.TempDir(), "scripts")
	lake := filepath.Join(t.TempDir(), "lake")
	t.Setenv("FAKE_SINFO_OUT", "debug* 0/1/0/1")
	code, _, stderr := submit(t, lake, dir, "--dry-run")
	if code != 0 || !strings.Contains(stderr, "score.sql is an array of 2 tasks × 1 CPUs = 2 CPUs") || !strings.Contains(stderr, "partition debug has 1 CPUs") {
		t.Fatalf("dry run on a 1-CPU partition: exit %d\n%s", code, stderr)
	}
	t.Setenv("FAKE_SINFO_OUT", "debug* 0/2/0/2")
	if code, _, stderr := submit(t, lake, dir, "--dry-run"); code != 0 || strings.Contains(stderr, "warning") {
		t.Fatalf("dry run on a 2-CPU partition: exit %d\n%s", code, stderr)
	}

	bin, _ := filepath.Abs(os.Args[0])
	for _, tc := range []struct{ name, src, want string }{
		{"unknown stage argument", "CALL reward(verifer := 'exact');\n", "verifer"},
		{"SQL syntax error", "CREATE TABLE t AS SELECT 1 FROM WHERE x;\nCALL reward();\n", "bad.sql (file 4 of the pipeline) does not compile; nothing submitted"},
	} {
		bad := writeFile(t, t.TempDir(), "bad.sql", tc.src)
		args := append([]string{"slurm", "submit"}, pipeline(t)...)
		args = append(args, bad, "--lake", lake, "--run", "r", "--rljob", bin, "--dir", dir)
		code, out, stderr := rljob(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, "bad.sql") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d\n%s%s", tc.name, code, out, stderr)
		}
	}
	if calls := readOr(filepath.Join(state, "calls")); calls != "" {
		t.Errorf("sbatch called for a pipeline that does not compile: %s", calls)
	}
	if _, err := os.Stat(lake); !os.IsNotExist(err) {
		t.Errorf("the refused submit created the lake")
	}
}
