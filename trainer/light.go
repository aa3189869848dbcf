package trainer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A light checkpoint holds no weights and no moments: only
// trainer_state.json, whose Light record names the checkpoint the update
// started from (its parent) and the update's arguments, and
// train_inputs.safetensors, the rows the update trained on. Loading it
// loads the parent (itself light or a full state) and replays the update
// (docs/checkpoints.md). The replay is the training caller's code (the
// rl package sets LightLoader); this package only recognises the folder
// and dispatches to it.
const TrainInputsFile = "train_inputs.safetensors"

// LightRecord is trainer_state.json's record of a light checkpoint.
type LightRecord struct {
	// Parent is the checkpoint folder the update started from, relative
	// to this one ("../../step=2/part-5-0" in a lake), as adapter_base.json
	// names a base.
	Parent string `json:"parent"`
	// Depth is the number of light checkpoints from the nearest full state
	// to this one, this one included (1 for a parent that is full).
	Depth int `json:"depth"`
	// Optimizer is "parent" (the update continued the parent's AdamW
	// moments) or "fresh" (it started from zeroed moments).
	Optimizer string `json:"optimizer"`
	// LoRA: the replayed model has adapters (their moments are the state).
	LoRA bool `json:"lora,omitempty"`
	// Stage is the stage whose update Update records: "" (train) or "sft".
	Stage string `json:"stage,omitempty"`
	// Update is the caller's record of the update to replay.
	Update json.RawMessage `json:"update"`
}

// Optimizer sources of a LightRecord.
const (
	LightOptParent = "parent"
	LightOptFresh  = "fresh"
)

// LightLoader loads the light checkpoint dir by replaying its update; the
// checkpoint it returns (model, moments, trainer state, the full
// ancestor's tokenizer) belongs to the caller. The rl package sets it.
var LightLoader func(dir string) (*Checkpoint, error)

// IsLightDir reports whether dir holds a light checkpoint: a
// train_inputs.safetensors and neither model.safetensors nor an adapter.
func IsLightDir(dir string) bool {
	return fileExists(filepath.Join(dir, TrainInputsFile)) && !fileExists(filepath.Join(dir, ModelFile)) &&
		!fileExists(filepath.Join(dir, AdapterModelFile))
}

// loadLight loads a light checkpoint through LightLoader.
func loadLight(dir string) (*Checkpoint, error) {
	if LightLoader == nil {
		return nil, fmt.Errorf("trainer: %s is a light checkpoint (no weights; %s replays it) and this program cannot replay it", dir, TrainInputsFile)
	}
	return LightLoader(dir)
}

// LightParent returns the parent folder of the light checkpoint dir and its
// record. A parent that does not exist is an error naming both folders.
func LightParent(dir string) (string, *TrainerState, error) {
	st, err := readState(dir)
	if err != nil {
		return "", nil, err
	}
	if st == nil || st.Light == nil {
		return "", nil, fmt.Errorf("trainer: light checkpoint %s: %s has no light record", dir, TrainerStateFile)
	}
	parent := st.Light.Parent
	if !filepath.IsAbs(parent) {
		parent = filepath.Join(dir, parent)
	}
	parent = filepath.Clean(parent)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return "", nil, fmt.Errorf("trainer: light checkpoint %s replays from its parent %s, which does not exist "+
			"(removed, or the lake was copied without it): restore that folder, or resume from a full checkpoint", dir, parent)
	}
	return parent, st, nil
}

// readState reads dir/trainer_state.json (nil when absent).
func readState(dir string) (*TrainerState, error) {
	b, err := os.ReadFile(filepath.Join(dir, TrainerStateFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	var st TrainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("trainer: %s: %w", filepath.Join(dir, TrainerStateFile), err)
	}
	return &st, nil
}

// TokenizerDir is the folder that holds the tokenizer of checkpoint dir:
// dir itself, or, for a light checkpoint or a PEFT adapter exported
// without one, the nearest ancestor (parent, base) that has one.
func TokenizerDir(dir string) string {
	for range 1 << 10 { // a bound against a cycle of parents
		if fileExists(filepath.Join(dir, TokenizerFile)) {
			return dir
		}
		next := ""
		switch {
		case IsLightDir(dir):
			next, _, _ = LightParent(dir)
		case IsAdapterDir(dir):
			next, _, _ = AdapterBase(dir)
		}
		if next == "" {
			return dir
		}
		dir = next
	}
	return dir
}

// lightFingerprint identifies a light checkpoint as BaseFingerprint does a
// full one: SHA-256 of its two files, which with its parent's fingerprint
// determine its weights.
func lightFingerprint(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{TrainerStateFile, TrainInputsFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	parent, _, err := LightParent(dir)
	if err != nil {
		return "", err
	}
	pfp, err := BaseFingerprint(parent)
	if err != nil {
		return "", err
	}
	h.Write([]byte(pfp))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32], nil
}
