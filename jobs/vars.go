package jobs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var (
	// getvarRE finds getvariable('name') in a statement, also inside a
	// quoted query argument where the quotes are doubled.
	getvarRE = regexp.MustCompile(`(?i)\bgetvariable\s*\(\s*'{1,2}([A-Za-z_][A-Za-z0-9_]*)'{1,2}\s*\)`)
	// getvarAnyRE finds every getvariable( call, literal name or not.
	getvarAnyRE = regexp.MustCompile(`(?i)\bgetvariable\s*\(`)
)

// VariablesRead returns the variables the job's statements (included files
// and loop headers too) read with getvariable('name'), sorted, in lower
// case. known is false when some getvariable takes a computed name, so the
// list may be incomplete.
func VariablesRead(job *Job) (names []string, known bool) {
	seen := map[string]bool{}
	known = true
	for _, s := range job.Stmts {
		lits := getvarRE.FindAllStringSubmatch(s.Text, -1)
		if len(lits) != len(getvarAnyRE.FindAllStringIndex(s.Text, -1)) {
			known = false
		}
		for _, m := range lits {
			seen[strings.ToLower(m[1])] = true
		}
	}
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, known
}

// checkSetsRead refuses a --set of a variable no statement of the job reads
// (a typo, or a variable of another job file), naming those it does read.
func checkSetsRead(job *Job, order []string) error {
	read, known := VariablesRead(job)
	if !known {
		return nil
	}
	isRead := map[string]bool{}
	var user []string
	for _, n := range read {
		isRead[n] = true
		if !isReserved(n) {
			user = append(user, n)
		}
	}
	for _, k := range order {
		if isRead[strings.ToLower(k)] {
			continue
		}
		hint := "the job reads no variable of its own, so it takes no --set"
		if len(user) > 0 {
			hint = "the job reads " + strings.Join(user, ", ")
			if m := closest(strings.ToLower(k), user); m != "" {
				hint = fmt.Sprintf("did you mean %s? %s", m, hint)
			}
		}
		return &UsageError{Pos: Pos{File: job.File},
			Msg:  fmt.Sprintf("--set %s: no statement of the job reads variable %q (getvariable('%s'))", k, k, k),
			Hint: hint}
	}
	return nil
}

func isReserved(name string) bool {
	for _, r := range ReservedVariables {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}
