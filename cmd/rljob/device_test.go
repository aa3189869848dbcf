package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rljob/rljob/kernels/cuda"
)

// TestDeviceCUDAUnavailable: --device cuda (or RLJOB_DEVICE=cuda) in a
// binary built without CUDA, or with no GPU, is exit 2 naming what is
// missing, before the lake is touched; an unknown device is exit 2 too.
// On a GPU machine with a cuda build it has nothing to check and skips.
func TestDeviceCUDAUnavailable(t *testing.T) {
	want := "built without CUDA: make build-cuda"
	if cuda.Built {
		_, err := cuda.DeviceCount()
		if err == nil {
			t.Skip("a GPU opens: --device cuda is available (TestDeviceCUDARollout checks it)")
		}
		want = "no CUDA device: " + err.Error()
	}
	dir := t.TempDir()
	lake := filepath.Join(dir, "lake")
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, lake)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--device", "cuda"}, "--device cuda: " + want},
		{map[string]string{"RLJOB_DEVICE": "cuda"}, nil, "RLJOB_DEVICE cuda: " + want},
		{map[string]string{"RLJOB_DEVICE": "cpu"}, []string{"--device", "cuda"}, "--device cuda: " + want},
		{nil, []string{"--device", "gpu"}, `--device "gpu": unknown device`},
	} {
		args := append([]string{"run", "testdata/full_train.sql", "--lake", lake, "--steps", "1"}, tc.args...)
		code, _, stderr := rljob(t, tc.env, args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("rljob %s (env %v): exit %d, want 2 and %q in\n%s", strings.Join(args, " "), tc.env, code, tc.want, stderr)
		}
	}
	if after := snapshot(t, lake); !reflect.DeepEqual(before, after) {
		t.Errorf("the lake changed: %d files before, %d after", len(before), len(after))
	}
}

// TestDeviceRecorded: a run with --device cpu (and one with
// RLJOB_DEVICE=cpu and no flag) records "device": "cpu" in every call
// record's and checkpoint's manifest.
func TestDeviceRecorded(t *testing.T) {
	for name, run := range map[string]struct {
		env  map[string]string
		args []string
	}{"flag": {nil, []string{"--device", "cpu"}}, "env": {map[string]string{"RLJOB_DEVICE": "cpu"}, nil}} {
		t.Run(name, func(t *testing.T) {
			lake := filepath.Join(t.TempDir(), "lake")
			args := append([]string{"run", "testdata/full_train.sql", "--lake", lake, "--steps", "2", "--seed", "1"}, run.args...)
			if code, _, stderr := rljob(t, run.env, args...); code != 0 {
				t.Fatalf("rljob %s: exit %d\n%s", strings.Join(args, " "), code, stderr)
			}
			for _, table := range []string{"calls", "checkpoints"} {
				devices := manifestDevices(t, filepath.Join(lake, table))
				if len(devices) == 0 {
					t.Fatalf("no %s manifests in %s", table, lake)
				}
				for unit, d := range devices {
					if d != "cpu" {
						t.Errorf("%s: device %v, want cpu", unit, d)
					}
				}
			}
		})
	}
}

// manifestDevices maps each commit unit under dir to its manifest's
// recorded device.
func manifestDevices(t *testing.T, dir string) map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "run=*", "step=*", "part-*", "_commit.json"))
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Args map[string]any `json:"args"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Dir(f)] = m.Args["device"]
	}
	return out
}
