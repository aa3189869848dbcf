package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// moveJob starts a run with init_policy and fine-tunes it one sft step per
// step: every checkpoint after the first names its parent.
const moveJob = `CALL init_policy(config := 'tiny', tokenizer := 'chars:0123456789+=', seed := 1, when := getvariable('step') = 0);
CREATE OR REPLACE TABLE d AS SELECT '1+1=' AS prompt, '2' AS completion;
CALL sft(data := 'd', when := getvariable('step') > 0);
`

// TestLakeMoved: a lake works the same in place, copied with cp -a and
// moved with mv: checkpoint manifests record their parent lake-relative,
// gc --keep-checkpoints removes the same checkpoints (in place too), and
// the run resumes to the same checkpoint bytes.
func TestLakeMoved(t *testing.T) {
	dir := t.TempDir()
	job := writeFile(t, dir, "move.sql", moveJob)
	orig := filepath.Join(dir, "lake")
	mustChild(t, nil, "run", job, "--lake", orig, "--run", "m", "--steps", "5")
	b, err := os.ReadFile(filepath.Join(orig, "checkpoints/run=m/step=3/part-2-0/_commit.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"policy": "checkpoints/run=m/step=2/part-2-0"`) || strings.Contains(string(b), orig) {
		t.Fatalf("manifest does not record its parent lake-relative:\n%s", b)
	}
	copied := filepath.Join(dir, "copied")
	if out, err := exec.Command("cp", "-a", orig, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v %s", err, out)
	}
	moved := filepath.Join(dir, "elsewhere", "moved")
	if err := os.MkdirAll(filepath.Dir(moved), 0o755); err != nil {
		t.Fatal(err)
	}
	inPlace := filepath.Join(dir, "inplace")
	if out, err := exec.Command("cp", "-a", orig, inPlace).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v %s", err, out)
	}
	if err := os.Rename(orig, moved); err != nil {
		t.Fatal(err)
	}
	// inplace stands for the lake that never moved: its gc runs first,
	// before anything else happens to it.
	var want map[string]string
	for _, lake := range []string{inPlace, copied, moved} {
		code, out, stderr := rljob(t, nil, "lake", "gc", "--lake", lake, "--keep-checkpoints", "last=1")
		// kept: step 0 (the run's first), step 4 (the last); 1..3 go.
		if code != 0 || !strings.Contains(out, "ok: 3 checkpoints removed, 2 kept") {
			t.Fatalf("%s: gc: exit %d\n%s%s", lake, code, out, stderr)
		}
		mustChild(t, nil, "run", job, "--lake", lake, "--run", "m", "--steps", "1")
		if code, out, stderr := rljob(t, nil, "lake", "verify", "--lake", lake); code != 0 {
			t.Fatalf("%s: verify: %d\n%s%s", lake, code, out, stderr)
		}
		got := checkpointFiles(t, lake)
		if want == nil {
			want = got
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: checkpoints differ from the lake in place:\n%v\nwant\n%v", lake, got, want)
		}
	}
	// step 5 is a light checkpoint (sft's full_state_every, docs/checkpoints.md):
	// its trainer state names the update that a resume replays.
	if len(want) == 0 || want["checkpoints/run=m/step=5/part-2-0/trainer_state.json"] == "" {
		t.Fatalf("no step 5 checkpoint after the resume: %v", want)
	}
}

// checkpointFiles maps each checkpoint file but the manifests (which hold
// times) to its sha256.
func checkpointFiles(t *testing.T, lake string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p, sum := range snapshot(t, lake) {
		if strings.HasPrefix(p, "checkpoints/") && !strings.HasSuffix(p, "_commit.json") {
			out[p] = sum
		}
	}
	return out
}
