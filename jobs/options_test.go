package jobs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	env3 := func(id, n, lo string) func(string) string {
		return func(k string) string {
			switch k {
			case "SLURM_ARRAY_TASK_ID":
				return id
			case "SLURM_ARRAY_TASK_COUNT":
				return n
			case "SLURM_ARRAY_TASK_MIN":
				return lo
			}
			return ""
		}
	}
	env := func(id, n string) func(string) string { return env3(id, n, "") }
	tests := []struct {
		name     string
		flag     string
		env      func(string) string
		shard, n int
		wantErr  string
	}{
		{name: "none", env: env("", ""), shard: 0, n: 1},
		{name: "flag", flag: "2/4", env: env("", ""), shard: 2, n: 4},
		{name: "slurm", env: env("3", "8"), shard: 3, n: 8},
		{name: "flag beats slurm", flag: "0/2", env: env("3", "8"), shard: 0, n: 2},
		{name: "only id set", env: env("3", ""), shard: 0, n: 1},
		{name: "out of range", flag: "4/4", env: env("", ""), wantErr: `bad --shard "4/4"`},
		{name: "negative", flag: "-1/4", env: env("", ""), wantErr: "bad --shard"},
		{name: "zero shards", flag: "0/0", env: env("", ""), wantErr: "bad --shard"},
		{name: "garbage", flag: "a/b", env: env("", ""), wantErr: "want i/n"},
		{name: "bad slurm", env: env("8", "8"), wantErr: "SLURM_ARRAY_TASK_ID=8 SLURM_ARRAY_TASK_COUNT=8): task 8 is not one of 0..7"},
		{name: "slurm 0-based with min", env: env3("0", "2", "0"), shard: 0, n: 2},
		{name: "slurm 1-based first", env: env3("1", "2", "1"), shard: 0, n: 2},
		{name: "slurm 1-based last", env: env3("2", "2", "1"), shard: 1, n: 2},
		{name: "slurm 1-based past the end", env: env3("3", "2", "1"), wantErr: "task 3 is not one of 1..2"},
		{name: "slurm id below min", env: env3("0", "2", "1"), wantErr: "SLURM_ARRAY_TASK_MIN=1"},
		{name: "slurm garbage", env: env3("x", "2", "1"), wantErr: "not integers"},
		{name: "flag hint is not slurm's", flag: "5/2", env: env("", ""), wantErr: "e.g. --shard 0/4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, n, err := ParseShard(tc.flag, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || ExitCode(err) != 2 {
					t.Fatalf("err = %v, want %q (exit 2)", err, tc.wantErr)
				}
				return
			}
			if err != nil || s != tc.shard || n != tc.n {
				t.Fatalf("got %d/%d, %v; want %d/%d", s, n, err, tc.shard, tc.n)
			}
		})
	}
}

func TestParseSet(t *testing.T) {
	tests := []struct {
		in      string
		key     string
		val     any
		wantErr string
	}{
		{in: "n=3", key: "n", val: int64(3)},
		{in: "lr=1e-3", key: "lr", val: 1e-3},
		{in: "flag=true", key: "flag", val: true},
		{in: "flag=FALSE", key: "flag", val: false},
		{in: "data=../shared/x.jsonl", key: "data", val: "../shared/x.jsonl"},
		{in: "s=a=b", key: "s", val: "a=b"},
		{in: "empty=", key: "empty", val: ""},
		{in: "noequals", wantErr: "bad --set"},
		{in: "1x=2", wantErr: "bad --set"},
		{in: "step=3", wantErr: "set by the runner"},
		{in: "RUN=x", wantErr: "set by the runner"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			k, v, err := ParseSet(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || k != tc.key || v != tc.val {
				t.Fatalf("got %q=%#v, %v; want %q=%#v", k, v, err, tc.key, tc.val)
			}
		})
	}
}

func TestCheckOutputTable(t *testing.T) {
	for _, ok := range []string{"rollouts", "eval_set", "t2"} {
		if msg, _ := checkOutputTable(ok); msg != "" {
			t.Errorf("%q rejected: %s", ok, msg)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", "_staging", "Upper", "steps", "checkpoints", "x.y", ".."} {
		if msg, _ := checkOutputTable(bad); msg == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDeriveSeed(t *testing.T) {
	a, b := DeriveSeed(1, 2, 3), DeriveSeed(1, 2, 3)
	if a != b || a < 0 {
		t.Fatalf("not deterministic or negative: %d %d", a, b)
	}
	seen := map[int64]bool{}
	for _, s := range []int64{DeriveSeed(1), DeriveSeed(2), DeriveSeed(1, 0), DeriveSeed(1, 1), DeriveSeed(1, 0, 0), DeriveSeed(1, 2, 3), DeriveSeed(1, 3, 2)} {
		if seen[s] {
			t.Errorf("collision: %d", s)
		}
		seen[s] = true
	}
}

func TestRunLock(t *testing.T) {
	dir := t.TempDir()
	p := LockPath(dir, "r1", 0, 1)
	if want := filepath.Join(dir, "_locks", "run=r1.lock"); p != want {
		t.Fatalf("LockPath = %s, want %s", p, want)
	}
	if got := LockPath(dir, "r1", 2, 4); !strings.HasSuffix(got, "run=r1.shard=2-of-4.lock") {
		t.Fatalf("sharded LockPath = %s", got)
	}
	l1, err := AcquireRunLock(p, "r1")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	if !strings.Contains(string(before), "pid=") || !strings.Contains(string(before), "host=") {
		t.Fatalf("lock file content %q", before)
	}
	_, err = AcquireRunLock(p, "r1")
	var le *LockError
	if err == nil || ExitCode(err) != 4 {
		t.Fatalf("second lock: err = %v, want LockError", err)
	}
	if le, _ = err.(*LockError); le == nil || !strings.Contains(le.Error(), strings.TrimSpace(strings.SplitN(string(before), " ", 2)[0])) {
		t.Fatalf("message %q does not name the holder %q", err, before)
	}
	after, _ := os.ReadFile(p)
	if string(after) != string(before) {
		t.Fatalf("second locker changed the lock file: %q -> %q", before, after)
	}
	if err := l1.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireRunLock(p, "r1")
	if err != nil {
		t.Fatalf("relock after release: %v", err)
	}
	l2.Release()
}
