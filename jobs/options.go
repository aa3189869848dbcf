package jobs

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ParseShard parses "--shard i/n" (0 <= i < n). An empty string means no
// flag: then SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are used when
// both are set (getenv is os.Getenv outside tests), else shard 0 of 1.
// Slurm task ids must start at 0 (sbatch --array=0-<n-1>).
func ParseShard(flag string, getenv func(string) string) (shard, n int, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	src := "--shard"
	if flag == "" {
		id, cnt := getenv("SLURM_ARRAY_TASK_ID"), getenv("SLURM_ARRAY_TASK_COUNT")
		if id == "" || cnt == "" {
			return 0, 1, nil
		}
		flag, src = id+"/"+cnt, "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
	}
	is, ns, ok := strings.Cut(flag, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	k, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err1 != nil || err2 != nil || k < 1 || i < 0 || i >= k {
		return 0, 0, &UsageError{
			Msg:  fmt.Sprintf("bad %s %q", src, flag),
			Hint: "want i/n with 0 <= i < n, e.g. --shard 0/4 (Slurm: --array=0-3)",
		}
	}
	return i, k, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ReservedVariables are set by the runner before each iteration and cannot
// be overridden with --set.
var ReservedVariables = []string{"step", "run", "seed", "shard", "num_shards"}

// ParseSet parses one "--set key=value": the key must be an identifier
// other than a reserved variable; the value is typed as int64 if it parses
// as one, else float64, else bool (true/false), else string.
func ParseSet(kv string) (key string, val any, err error) {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	if !ok || !identRE.MatchString(k) {
		return "", nil, &UsageError{Msg: fmt.Sprintf("bad --set %q", kv), Hint: "want --set key=value with key an identifier, e.g. --set data=path/to/test.jsonl"}
	}
	for _, r := range ReservedVariables {
		if strings.EqualFold(k, r) {
			return "", nil, &UsageError{Msg: fmt.Sprintf("--set %s: %q is set by the runner", kv, r), Hint: "use --run, --seed, --shard or --steps instead"}
		}
	}
	return k, typedValue(v), nil
}

func typedValue(v string) any {
	if i, err := strconv.ParseInt(v, 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return f
	}
	switch strings.ToLower(v) {
	case "true":
		return true
	case "false":
		return false
	}
	return v
}

// tableNameRE is what a lake table written by a stage may be called: a
// lower-case identifier not starting with '_' (folders starting with '_' are
// the lake's own: _staging, _locks).
var tableNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// reservedTables are lake folders that stages other than their owners may
// not write: checkpoints (trainer) and steps (the runner's step markers).
var reservedTables = map[string]bool{"checkpoints": true, StepsTable: true}

// checkOutputTable validates a table name a stage commits into.
func checkOutputTable(name string) (msg, hint string) {
	if !tableNameRE.MatchString(name) {
		return fmt.Sprintf("cannot write lake table %q", name), "a lake table name is lower case letters, digits and _, starting with a letter"
	}
	if reservedTables[name] {
		return fmt.Sprintf("lake table %q is reserved", name), "choose another name for into"
	}
	return "", ""
}

// DeriveSeed is the one function that makes stage seeds: a 64-bit mix
// (SplitMix64 finaliser applied in turn) of the run seed and any number of
// integers (step, call, shard, prompt, sample ...). The same inputs give the
// same seed on every machine, so a rerun reproduces its randomness.
func DeriveSeed(seed int64, parts ...int64) int64 {
	x := uint64(seed)
	mix := func(z uint64) uint64 {
		z += 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	x = mix(x)
	for _, p := range parts {
		x = mix(x ^ uint64(p))
	}
	return int64(x >> 1)
}
