package arrowio

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxPartitionValue is the longest accepted partition value, in bytes (path
// components are limited to 255 bytes on most file systems).
const maxPartitionValue = 200

// PartitionError is a user error: a partition value (a run name, a table
// name) that cannot be a Hive path component.
type PartitionError struct {
	Key    string // "run", "table", ...; empty when unknown
	Value  string
	Reason string
}

func (e *PartitionError) Error() string {
	what := "partition value"
	if e.Key != "" {
		what = e.Key
	}
	return fmt.Sprintf("arrowio: invalid %s %q: %s; use letters, digits, '-', '_' and '.' (not first), e.g. %q",
		what, e.Value, e.Reason, suggestName(e.Value))
}

// ValidatePartitionValue checks that v can be a Hive partition value: a
// single path component that every Hive reader parses back to v. Rejected:
// empty, longer than 200 bytes, invalid UTF-8, "/" "\" "=" ":" "%" and the
// glob characters * ? [ ] { }, "..", a leading "." or leading/trailing space,
// NUL and other control characters. The error is a *PartitionError.
func ValidatePartitionValue(v string) error { return validatePartition("", v) }

func validatePartition(key, v string) error {
	bad := func(reason string) error { return &PartitionError{Key: key, Value: v, Reason: reason} }
	switch {
	case v == "":
		return bad("empty")
	case len(v) > maxPartitionValue:
		return bad(fmt.Sprintf("longer than %d bytes", maxPartitionValue))
	case !utf8.ValidString(v):
		return bad("not valid UTF-8")
	case strings.Contains(v, ".."):
		return bad(`contains ".."`)
	case v[0] == '.':
		return bad(`starts with "."`)
	}
	for _, r := range v {
		switch {
		case r == 0:
			return bad("contains NUL")
		case unicode.IsControl(r):
			return bad(fmt.Sprintf("contains control character %U", r))
		case strings.ContainsRune(`/\=:%*?[]{}`, r):
			// '/' '\' split paths, '=' breaks Hive key=value parsing, '%' is
			// percent-decoded by Hive readers, glob characters confuse
			// read_parquet patterns, ':' is not allowed on Windows.
			return bad(fmt.Sprintf("contains %q", r))
		}
	}
	if strings.TrimSpace(v) != v {
		return bad("starts or ends with white space")
	}
	return nil
}

// validateTable checks a table name: a partition-safe value that does not
// start with '_' (reserved: _staging, _locks).
func validateTable(t string) error {
	if err := validatePartition("table", t); err != nil {
		return err
	}
	if t[0] == '_' {
		return &PartitionError{Key: "table", Value: t, Reason: `starts with "_" (reserved for _staging and _locks)`}
	}
	return nil
}

// suggestName maps v onto a valid value, for error messages.
func suggestName(v string) string {
	var b strings.Builder
	for _, r := range v {
		if r < utf8.RuneSelf && (r == '-' || r == '_' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else if b.Len() > 0 {
			b.WriteByte('_')
		}
	}
	s := strings.Trim(strings.ReplaceAll(b.String(), "..", "_"), "._")
	if s == "" {
		return "run1"
	}
	if len(s) > maxPartitionValue {
		s = s[:maxPartitionValue]
	}
	return s
}

// Unit is one commit unit: everything one CALL (Call, its index in the job
// file) of one shard writes to one table for one (run, step).
type Unit struct {
	Table string `json:"table"`
	Run   string `json:"run"`
	Step  int64  `json:"step"`
	Call  int    `json:"call"`
	Shard int    `json:"shard"`
}

func (u Unit) String() string { return u.Dir() }

// Validate checks the table name, the run (ValidatePartitionValue) and that
// step, call and shard are >= 0.
func (u Unit) Validate() error {
	if err := validateTable(u.Table); err != nil {
		return err
	}
	if err := validatePartition(KeyRun, u.Run); err != nil {
		return err
	}
	if u.Step < 0 || u.Call < 0 || u.Shard < 0 {
		return fmt.Errorf("arrowio: unit %s: step, call and shard must be >= 0 (step=%d call=%d shard=%d)",
			u.Table, u.Step, u.Call, u.Shard)
	}
	return nil
}

// PartDir is the step folder of the unit: <table>/run=<R>/step=<S>.
func (u Unit) PartDir() string {
	return u.Table + "/" + KeyRun + "=" + u.Run + "/" + KeyStep + "=" + strconv.FormatInt(u.Step, 10)
}

// Dir is the unit folder relative to the lake root, slash-separated:
// <table>/run=<R>/step=<S>/part-<call>-<shard>. A checkpoint is a unit like
// any other (checkpoints/run=R/step=S/part-<call>-0/), so one step may hold
// the checkpoints of several calls (sft then train).
func (u Unit) Dir() string {
	return u.PartDir() + "/" + u.partName()
}

func (u Unit) partName() string {
	return "part-" + strconv.Itoa(u.Call) + "-" + strconv.Itoa(u.Shard)
}

// FileName is the conventional data file name of the unit,
// part-<call>-<shard>.parquet (what WriteRecords uses for name "").
func (u Unit) FileName() string { return u.partName() + ".parquet" }
