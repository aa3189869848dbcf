package script

import "strings"

// tokKind classifies the tokens of the job-file lexer. The lexer is a
// transcription of the parts of DuckDB's scanner (third_party/libpg_query/
// scan.l, itself PostgreSQL's) that decide where quoted text, comments and
// statement-ending semicolons are. It does not classify operators or
// keywords beyond what ParseCall needs: any other byte is a one-byte
// tokOther, which splits the same way as DuckDB's multi-byte operators
// because scan.l also stops an operator at an embedded "--" or "/*".
type tokKind int

const (
	tokSpace       tokKind = iota // whitespace, "--" comment or "/* */" comment
	tokIdent                      // unquoted identifier or keyword
	tokQuotedIdent                // "..." or U&"..."
	tokString                     // '...', E'...', N'...', $tag$...$tag$
	tokBitString                  // B'...', X'...', U&'...' (not plain strings for ParseCall)
	tokNumber                     // 1, 1_000, 1.5, .5, 1e-3
	tokParam                      // $1
	tokSemicolon                  // ;
	tokOther                      // any other single byte
)

// token is one lexeme: src[start:end].
type token struct {
	kind       tokKind
	start, end int
}

// lexError is an unterminated construct starting at byte offset at.
type lexError struct {
	at  int
	msg string
}

// lexer scans src from pos.
type lexer struct {
	src string
	pos int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentStart is scan.l's ident_start (and dolq_start): [A-Za-z\200-\377_].
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// isDolqCont is scan.l's dolq_cont: ident_start plus digits, without '$'.
func isDolqCont(c byte) bool { return isIdentStart(c) || isDigit(c) }

// isIdentCont is scan.l's ident_cont: dolq_cont plus '$', so "a$$" is one
// identifier and not the start of a dollar quote.
func isIdentCont(c byte) bool { return isDolqCont(c) || c == '$' }

func (lx *lexer) at(i int) byte {
	if i < len(lx.src) {
		return lx.src[i]
	}
	return 0
}

// next returns the token at lx.pos and advances past it; ok is false at the
// end of input.
func (lx *lexer) next() (tok token, ok bool, err *lexError) {
	s, p := lx.src, lx.pos
	if p >= len(s) {
		return token{}, false, nil
	}
	c := s[p]
	end, kind := p+1, tokOther
	switch {
	case isSpace(c):
		end = p + 1
		for end < len(s) && isSpace(s[end]) {
			end++
		}
		kind = tokSpace
	case c == '-' && lx.at(p+1) == '-':
		// "--" comment to the next \n or \r (scan.l: non_newline [^\n\r]).
		end = p + 2
		for end < len(s) && s[end] != '\n' && s[end] != '\r' {
			end++
		}
		kind = tokSpace
	case c == '/' && lx.at(p+1) == '*':
		// Block comments nest in DuckDB (scan.l keeps xcdepth).
		depth := 0
		end = p + 2
		for {
			if end >= len(s) {
				return token{}, false, &lexError{p, "unterminated /* comment"}
			}
			if s[end] == '/' && lx.at(end+1) == '*' {
				depth++
				end += 2
			} else if s[end] == '*' && lx.at(end+1) == '/' {
				end += 2
				if depth == 0 {
					break
				}
				depth--
			} else {
				end++
			}
		}
		kind = tokSpace
	case (c == 'e' || c == 'E') && lx.at(p+1) == '\'':
		e, err := scanQuoted(s, p+1, '\'', true)
		if err != nil {
			return token{}, false, &lexError{p, "unterminated quoted string"}
		}
		end, kind = e, tokString
	case (c == 'n' || c == 'N') && lx.at(p+1) == '\'':
		e, err := scanQuoted(s, p+1, '\'', false)
		if err != nil {
			return token{}, false, &lexError{p, "unterminated quoted string"}
		}
		end, kind = e, tokString
	case (c == 'b' || c == 'B' || c == 'x' || c == 'X') && lx.at(p+1) == '\'':
		// Bit and hex strings have no escapes; "''" inside them ends one
		// literal and starts the next, which quotes the same bytes.
		e, err := scanQuoted(s, p+1, '\'', false)
		if err != nil {
			return token{}, false, &lexError{p, "unterminated bit string literal"}
		}
		end, kind = e, tokBitString
	case (c == 'u' || c == 'U') && lx.at(p+1) == '&' && (lx.at(p+2) == '\'' || lx.at(p+2) == '"'):
		q := s[p+2]
		e, err := scanQuoted(s, p+2, q, false)
		if err != nil {
			if q == '"' {
				return token{}, false, &lexError{p, "unterminated quoted identifier"}
			}
			return token{}, false, &lexError{p, "unterminated quoted string"}
		}
		end, kind = e, tokBitString
		if q == '"' {
			kind = tokQuotedIdent
		}
	case c == '\'':
		e, err := scanQuoted(s, p, '\'', false)
		if err != nil {
			return token{}, false, &lexError{p, "unterminated quoted string"}
		}
		end, kind = e, tokString
	case c == '"':
		e, err := scanQuoted(s, p, '"', false)
		if err != nil {
			return token{}, false, &lexError{p, "unterminated quoted identifier"}
		}
		end, kind = e, tokQuotedIdent
	case c == '$':
		if d := dollarDelim(s, p); d > 0 {
			delim := s[p:d]
			i := strings.Index(s[d:], delim)
			if i < 0 {
				return token{}, false, &lexError{p, "unterminated dollar-quoted string " + delim}
			}
			end, kind = d+i+len(delim), tokString
		} else if isDigit(lx.at(p + 1)) {
			end, kind = scanInteger(s, p+1), tokParam
		}
	case isIdentStart(c):
		end = p + 1
		for end < len(s) && isIdentCont(s[end]) {
			end++
		}
		kind = tokIdent
	case isDigit(c) || c == '.' && isDigit(lx.at(p+1)):
		end, kind = scanNumber(s, p), tokNumber
	case c == ';':
		kind = tokSemicolon
	}
	lx.pos = end
	return token{kind: kind, start: p, end: end}, true, nil
}

// scanQuoted scans a quoted run starting at the quote byte s[open] and
// returns the offset just past the closing quote. A doubled quote is an
// escaped quote; with backslash, '\' escapes the next byte (E'...' strings).
func scanQuoted(s string, open int, q byte, backslash bool) (int, error) {
	for i := open + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if backslash {
				i++ // skips the escaped byte; a '\' at EOF leaves i == len(s)
			}
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1, nil
		}
	}
	return 0, errUnterminated
}

type sentinel string

func (e sentinel) Error() string { return string(e) }

const errUnterminated = sentinel("unterminated")

// dollarDelim reports whether s[p:] starts with a dollar-quote delimiter
// $tag$ (tag empty or [A-Za-z\200-\377_][A-Za-z\200-\377_0-9]*) and returns
// the offset just past it, or 0.
func dollarDelim(s string, p int) int {
	i := p + 1
	if i < len(s) && isIdentStart(s[i]) {
		i++
		for i < len(s) && isDolqCont(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i] == '$' {
		return i + 1
	}
	return 0
}

// scanInteger scans scan.l's integer, {digit}("_"?{digit})*, from s[p]
// (a digit) and returns its end.
func scanInteger(s string, p int) int {
	i := p + 1
	for i < len(s) {
		if isDigit(s[i]) {
			i++
		} else if s[i] == '_' && i+1 < len(s) && isDigit(s[i+1]) {
			i += 2
		} else {
			break
		}
	}
	return i
}

// scanNumber scans scan.l's integer, decimal or real at s[p] with its
// fallback rules: "1..2" is 1, "..", 2 (decimalfail) and "1e" or "1e+" leave
// the exponent letter to the next token (realfail1/2).
func scanNumber(s string, p int) int {
	i := p
	if isDigit(s[i]) {
		i = scanInteger(s, i)
		if i+1 < len(s) && s[i] == '.' && s[i+1] == '.' {
			return i
		}
		if i < len(s) && s[i] == '.' {
			i++
			if i < len(s) && isDigit(s[i]) {
				i = scanInteger(s, i)
			}
		}
	} else { // ".5"
		i = scanInteger(s, i+1)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			i = scanInteger(s, j)
		}
	}
	return i
}
