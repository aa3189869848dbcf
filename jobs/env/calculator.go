package env

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The calculator environment (env := 'calculator'): the policy calls it by
// ending a turn with a tool call
//
//	<call>EXPR</call>
//
// (stop := '</call>' ends the turn there), and it answers
//
//	<result>VALUE</result>
//
// VALUE is EXPR's exact value: an integer in decimal, or a fraction as a
// decimal rounded half away from zero to 10 places with trailing zeros
// dropped (7/2 → 3.5, 1/3 → 0.3333333333, 2/3 → 0.6666666667). EXPR is
// numbers (123, 4.5), + − * / %, ** or ^ (integer exponents 0..64), unary
// minus and parentheses; × and ÷ are read as * and /; spaces are ignored.
// % needs integer operands. An expression it cannot evaluate (a syntax
// error, division by zero, a value over 4096 bits) is answered
// <result>error: WHY</result> and the episode goes on. A turn with no
// <call>…</call> after its last <call>, or that did not end at a stop
// (EOS, budget), is the policy's final answer: the episode is done (no
// observation, no reward). The last <call> of the turn is the one
// evaluated.
const (
	calcOpen    = "<call>"
	calcClose   = "</call>"
	calcMaxLen  = 256  // longest expression accepted
	calcMaxBits = 4096 // largest value (numerator and denominator bits)
)

func init() {
	Register("calculator", "arithmetic tool: <call>EXPR</call> → <result>VALUE</result>", func(cfg Config) (Env, error) {
		if cfg.Spec != "" {
			return nil, fmt.Errorf("calculator takes no spec (got %q): use env := 'calculator'", cfg.Spec)
		}
		return calculator{}, nil
	})
}

type calculator struct{}

func (calculator) Close() error { return nil }

func (calculator) Step(_ context.Context, ep *Episode) (Observation, error) {
	expr, ok := lastCall(ep.Text)
	if !ok || ep.Finish != FinishStop {
		return Observation{Done: true}, nil
	}
	v, err := Calculate(expr)
	if err != nil {
		return Observation{Text: "<result>error: " + err.Error() + "</result>"}, nil
	}
	return Observation{Text: "<result>" + v + "</result>"}, nil
}

// lastCall returns the expression of the turn's last <call>…</call>.
func lastCall(text string) (string, bool) {
	i := strings.LastIndex(text, calcOpen)
	if i < 0 {
		return "", false
	}
	rest := text[i+len(calcOpen):]
	j := strings.Index(rest, calcClose)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// Calculate evaluates an arithmetic expression exactly and formats its
// value as the calculator environment does.
func Calculate(expr string) (string, error) {
	if len(expr) > calcMaxLen {
		return "", fmt.Errorf("expression longer than %d bytes", calcMaxLen)
	}
	expr = strings.NewReplacer("×", "*", "÷", "/", "^", "**").Replace(expr)
	p := &calcParser{s: strings.Join(strings.Fields(expr), "")}
	if p.s == "" {
		return "", errors.New("empty expression")
	}
	v, err := p.expr()
	if err != nil {
		return "", err
	}
	if p.i < len(p.s) {
		return "", fmt.Errorf("unexpected %q at %d", p.s[p.i:p.i+1], p.i)
	}
	return formatRat(v), nil
}

func formatRat(v *big.Rat) string {
	if v.IsInt() {
		return v.Num().String()
	}
	s := v.FloatString(10)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// calcParser is a recursive-descent parser over s (spaces removed):
//
//	expr  := term (('+' | '-') term)*
//	term  := unary (('*' | '/' | '%') unary)*
//	unary := ('-' | '+') unary | power
//	power := atom ('**' unary)?
//	atom  := number | '(' expr ')'
type calcParser struct {
	s     string
	i     int
	depth int
}

func (p *calcParser) peek(tok string) bool { return strings.HasPrefix(p.s[p.i:], tok) }

func (p *calcParser) expr() (*big.Rat, error) {
	v, err := p.term()
	for err == nil && p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
		op := p.s[p.i]
		p.i++
		var w *big.Rat
		if w, err = p.term(); err == nil {
			if op == '+' {
				v = new(big.Rat).Add(v, w)
			} else {
				v = new(big.Rat).Sub(v, w)
			}
			err = checkSize(v)
		}
	}
	return v, err
}

func (p *calcParser) term() (*big.Rat, error) {
	v, err := p.unary()
	for err == nil && p.i < len(p.s) && !p.peek("**") && strings.ContainsRune("*/%", rune(p.s[p.i])) {
		op := p.s[p.i]
		p.i++
		var w *big.Rat
		if w, err = p.unary(); err != nil {
			break
		}
		switch op {
		case '*':
			v = new(big.Rat).Mul(v, w)
		case '/':
			if w.Sign() == 0 {
				return nil, errors.New("division by zero")
			}
			v = new(big.Rat).Quo(v, w)
		case '%':
			if !v.IsInt() || !w.IsInt() {
				return nil, errors.New("% needs integers")
			}
			if w.Sign() == 0 {
				return nil, errors.New("modulo by zero")
			}
			v = new(big.Rat).SetInt(new(big.Int).Rem(v.Num(), w.Num()))
		}
		err = checkSize(v)
	}
	return v, err
}

func (p *calcParser) unary() (*big.Rat, error) {
	if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
		neg := p.s[p.i] == '-'
		p.i++
		if p.depth++; p.depth > 64 {
			return nil, errors.New("nested too deeply")
		}
		v, err := p.unary()
		p.depth--
		if err != nil || !neg {
			return v, err
		}
		return new(big.Rat).Neg(v), nil
	}
	return p.power()
}

func (p *calcParser) power() (*big.Rat, error) {
	base, err := p.atom()
	if err != nil || !p.peek("**") {
		return base, err
	}
	p.i += 2
	e, err := p.unary()
	if err != nil {
		return nil, err
	}
	if !e.IsInt() || e.Sign() < 0 || e.Num().Cmp(big.NewInt(64)) > 0 {
		return nil, errors.New("exponents must be integers in 0..64")
	}
	n := e.Num().Int64()
	num := new(big.Int).Exp(base.Num(), big.NewInt(n), nil)
	den := new(big.Int).Exp(base.Denom(), big.NewInt(n), nil)
	v := new(big.Rat).SetFrac(num, den)
	return v, checkSize(v)
}

func (p *calcParser) atom() (*big.Rat, error) {
	if p.i >= len(p.s) {
		return nil, errors.New("expression ends early")
	}
	if p.s[p.i] == '(' {
		p.i++
		if p.depth++; p.depth > 64 {
			return nil, errors.New("nested too deeply")
		}
		v, err := p.expr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, errors.New("missing )")
		}
		p.i++
		return v, nil
	}
	j := p.i
	for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.') {
		j++
	}
	if j == p.i {
		return nil, fmt.Errorf("unexpected %q at %d", p.s[p.i:p.i+1], p.i)
	}
	lit := p.s[p.i:j]
	if strings.Count(lit, ".") > 1 || lit[0] == '.' || lit[len(lit)-1] == '.' {
		return nil, fmt.Errorf("bad number %q", lit)
	}
	v, ok := new(big.Rat).SetString(lit)
	if !ok {
		return nil, fmt.Errorf("bad number %q", lit)
	}
	p.i = j
	return v, nil
}

func checkSize(v *big.Rat) error {
	if v.Num().BitLen() > calcMaxBits || v.Denom().BitLen() > calcMaxBits {
		return fmt.Errorf("value over %d bits", calcMaxBits)
	}
	return nil
}
