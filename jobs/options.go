package jobs

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// ParseShard parses "--shard i/n" (0 <= i < n). An empty string means no
// flag: then Slurm's job-array variables are used when SLURM_ARRAY_TASK_ID
// and SLURM_ARRAY_TASK_COUNT are set (getenv is os.Getenv outside tests),
// else shard 0 of 1. The shard is SLURM_ARRAY_TASK_ID minus
// SLURM_ARRAY_TASK_MIN (0 when unset), so --array=0-3 and --array=1-4 both
// give shards 0..3 of 4. Arrays with a step or holes (--array=0-6:2,
// --array=1,5) are refused: the shards must be exactly min..min+count-1.
func ParseShard(flag string, getenv func(string) string) (shard, n int, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if flag == "" {
		return slurmShard(getenv)
	}
	is, ns, ok := strings.Cut(flag, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(is))
	k, err2 := strconv.Atoi(strings.TrimSpace(ns))
	if !ok || err1 != nil || err2 != nil || k < 1 || i < 0 || i >= k {
		return 0, 0, &UsageError{
			Msg:  fmt.Sprintf("bad --shard %q", flag),
			Hint: "want i/n with 0 <= i < n, e.g. --shard 0/4",
		}
	}
	return i, k, nil
}

// slurmShard reads the shard from a Slurm job array's environment.
func slurmShard(getenv func(string) string) (shard, n int, err error) {
	id, cnt, lo := getenv("SLURM_ARRAY_TASK_ID"), getenv("SLURM_ARRAY_TASK_COUNT"), getenv("SLURM_ARRAY_TASK_MIN")
	if id == "" || cnt == "" {
		return 0, 1, nil
	}
	env := fmt.Sprintf("SLURM_ARRAY_TASK_ID=%s SLURM_ARRAY_TASK_COUNT=%s", id, cnt)
	if lo != "" {
		env += " SLURM_ARRAY_TASK_MIN=" + lo
	}
	bad := func(why string) (int, int, error) {
		return 0, 0, &UsageError{
			Msg:  "cannot take the shard from Slurm's job array (" + env + "): " + why,
			Hint: "submit a contiguous array (sbatch --array=0-3 or --array=1-4, no :step or lists), or give --shard i/n",
		}
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(id))
	k, err2 := strconv.Atoi(strings.TrimSpace(cnt))
	m := 0
	var err3 error
	if lo != "" {
		m, err3 = strconv.Atoi(strings.TrimSpace(lo))
	}
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return bad("not integers")
	case k < 1:
		return bad("the count must be >= 1")
	case i-m < 0 || i-m >= k:
		return bad(fmt.Sprintf("task %d is not one of %d..%d", i, m, m+k-1))
	}
	return i - m, k, nil
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
// CheckOutputTable is checkOutputTable for stages of other packages.
func CheckOutputTable(name string) (msg, hint string) { return checkOutputTable(name) }

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
