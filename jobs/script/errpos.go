package script

import (
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// duckLineRE matches the context DuckDB appends to parser and binder
// errors: "LINE <n>: <line text>" and, on the next line, spaces and a caret.
// Long lines are shown as a window with "..." on either side.
var (
	duckLineRE = regexp.MustCompile(`(?m)^(LINE (\d+): )(.*)\n( *)\^`)
	duckNearRE = regexp.MustCompile(`at or near "((?:[^"]|"")*)"`)
)

// ErrorPosition maps a DuckDB error message about the statement st (run as
// st.Text) to a 1-based line and column (code points) in the job file. It
// reads DuckDB's "LINE n: ..." context and its caret; when the message
// names the token ("at or near \"X\""), the occurrence of X nearest to the
// caret on that line wins, which also corrects DuckDB's caret on lines with
// multi-byte characters. ok is false when the message has no position.
func ErrorPosition(st Statement, msg string) (line, col int, ok bool) {
	m := duckLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n < 1 {
		return 0, 0, false
	}
	lines := strings.SplitAfter(st.Text, "\n")
	if n > len(lines) {
		return 0, 0, false
	}
	lineStart := 0
	for _, l := range lines[:n-1] {
		lineStart += len(l)
	}
	text := strings.TrimRight(lines[n-1], "\r\n")
	shown, caret := m[3], len(m[4])-len(m[1])
	if caret < 0 {
		caret = 0
	}
	// A long line is shown as a window "...<middle>...": base is the byte
	// offset in text of shown[0].
	base := 0
	if strings.HasPrefix(shown, "...") {
		mid := strings.TrimSuffix(shown[3:], "...")
		if i := strings.Index(text, mid); i >= 0 {
			base = i - 3
		}
	}
	// The caret counts code points on ASCII lines; with multi-byte
	// characters DuckDB (v1.5) puts it too far left, at bytes minus twice
	// the extra bytes. Score each occurrence of the named token under both
	// readings; without a token, read the caret as code points.
	guess := byteOfRune(shown, caret)
	if nm := duckNearRE.FindStringSubmatch(msg); nm != nil {
		tok := strings.ReplaceAll(nm[1], `""`, `"`)
		best, bestScore := -1, 0
		for i := 0; tok != "" && i < len(shown); i++ {
			if !strings.HasPrefix(shown[i:], tok) {
				continue
			}
			chars := utf8.RuneCountInString(shown[:i])
			extra := i - chars
			score := min(abs(chars-caret), abs(i-2*extra-caret))
			if best < 0 || score < bestScore {
				best, bestScore = i, score
			}
		}
		if best >= 0 {
			guess = best
		}
	}
	guess = max(0, min(base+guess, len(text)))
	for guess > 0 && guess < len(text) && !utf8.RuneStart(text[guess]) {
		guess--
	}
	line, col = st.Position(lineStart + guess)
	return line, col, true
}

// byteOfRune returns the byte offset of the n-th code point of s (len(s) past the end).
func byteOfRune(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
