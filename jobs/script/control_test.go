package script

import (
	"strings"
	"testing"
)

func TestParseControl(t *testing.T) {
	tests := []struct {
		src  string
		want string // kind|cond or var:from..to|max|path|rest@line:col ("" = not a control statement)
	}{
		{"SELECT 1", ""},
		{"END", ""},
		{"END TRANSACTION", ""},
		{"CALL rollout(prompts := 'b')", ""},
		{"WHILE (SELECT count(*) FROM kept) < 3 DO", "WHILE|(SELECT count(*) FROM kept) < 3|0||"},
		{"while x < 3 max 1_0 do\n  CALL a(n := 1)", "WHILE|x < 3|10||CALL a(n := 1)@2:3"},
		{"FOR i IN 1..3 DO", "FOR|i:1..3|0||"},
		{"FOR r IN getvariable('a')..(SELECT max(k) FROM t) MAX 4 DO SELECT 1", "FOR|r:getvariable('a')..(SELECT max(k) FROM t)|4||SELECT 1@1:60"},
		{"FOR i IN 1..CASE WHEN x THEN 2 ELSE 0 END MAX 2 DO", "FOR|i:1..CASE WHEN x THEN 2 ELSE 0 END|2||"},
		{"end while", "END WHILE|0||"},
		{"END  FOR", "END FOR|0||"},
		{"INCLUDE 'core/a.sql'", "INCLUDE|0|core/a.sql|"},
		{"INCLUDE 'it''s.sql'", "INCLUDE|0|it's.sql|"},
	}
	for _, tc := range tests {
		st := Statement{Text: tc.src, Line: 1, Col: 1}
		c, rest, err := ParseControl(st)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		got := ""
		if c != nil {
			parts := []string{c.Kind.String()}
			switch c.Kind {
			case While:
				parts = append(parts, c.Cond.Text)
			case For:
				parts = append(parts, c.Var+":"+c.From.Text+".."+c.To.Text)
			}
			parts = append(parts, itoa(c.Max), c.Path)
			r := ""
			if rest != nil {
				r = rest.Text + "@" + itoa(int64(rest.Line)) + ":" + itoa(int64(rest.Col))
			}
			got = strings.Join(append(parts, r), "|")
		}
		if got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.src, got, tc.want)
		}
	}
}

func TestParseControlErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"WHILE x", "1:8: WHILE needs DO"},
		{"WHILE DO", "1:7: WHILE needs a condition"},
		{"WHILE x MAX -1 DO", "1:13: MAX takes a positive integer"},
		{"FOR IN 1..2 DO", "1:5: FOR needs a variable name"},
		{"FOR i 1..2 DO", "1:7: FOR i needs IN"},
		{"FOR i IN ..2 DO", "1:10: the range needs a first value"},
		{"FOR i IN 1.. DO", "1:14: the range needs a last value"},
		{"INCLUDE a.sql", "1:9: INCLUDE takes one quoted file name"},
		{"END WHILE x", "1:11: END WHILE ends a statement"},
	}
	for _, tc := range tests {
		_, _, err := ParseControl(Statement{Text: tc.src, Line: 1, Col: 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	s := ""
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	if neg {
		s = "-" + s
	}
	return s
}
