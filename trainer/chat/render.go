package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	"github.com/rljob/rljob/third_party/jinja"
)

// Error kinds.
const (
	KindSyntax  = "syntax"          // the template does not compile
	KindRaise   = "raise_exception" // the template refused the conversation
	KindRender  = "render"          // evaluating the template failed otherwise
	KindMessage = "message"         // the conversation is not a list of {role, content} objects
)

// Error is a failed rendering. It names the model folder, the message
// (Index −1 when the failure is not tied to one) and the template's words.
type Error struct {
	Dir   string
	File  string
	Index int
	Role  string
	Kind  string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Dir != "" {
		fmt.Fprintf(&b, "chat template of %s", e.Dir)
		if e.File != "" {
			fmt.Fprintf(&b, " (%s)", e.File)
		}
	} else {
		b.WriteString("chat messages")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, ": message %d", e.Index)
		if e.Role != "" {
			fmt.Fprintf(&b, " (role %q)", e.Role)
		}
	}
	switch e.Kind {
	case KindSyntax:
		b.WriteString(": syntax error: ")
	case KindRaise:
		b.WriteString(": the template raised: ")
	default:
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Messages is a parsed conversation: JSON objects with a string "role",
// kept with their key order (tojson in a template prints them in it).
type Messages struct {
	vals  []jinja.Value
	roles []string
}

// Len is the number of messages.
func (m Messages) Len() int { return len(m.vals) }

// Roles returns the role of each message.
func (m Messages) Roles() []string { return m.roles }

// ParseMessages reads a JSON list of messages. Each must be an object with
// a string "role"; "content" may be a string, null, or a list (multimodal
// parts, left to the template). Other keys (tool_calls, reasoning_content,
// ...) are passed through.
func ParseMessages(data []byte) (Messages, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return Messages{}, &Error{Index: -1, Kind: KindMessage, Msg: "messages are not JSON: " + err.Error()}
	}
	if !v.IsList() {
		return Messages{}, &Error{Index: -1, Kind: KindMessage, Msg: "messages must be a JSON list of {\"role\", \"content\"} objects"}
	}
	var m Messages
	for i, item := range v.AsList().Items {
		bad := func(msg string) error { return &Error{Index: i, Kind: KindMessage, Msg: msg} }
		if !item.IsDict() {
			return Messages{}, bad("not an object: want {\"role\": ..., \"content\": ...}")
		}
		role, ok := item.AsDict().Get("role")
		if !ok || !role.IsString() || role.AsString() == "" {
			return Messages{}, bad("no string \"role\"")
		}
		if c, ok := item.AsDict().Get("content"); ok && !(c.IsString() || c.IsNone() || c.IsList()) {
			return Messages{}, bad("\"content\" must be a string, null or a list of parts")
		}
		m.vals = append(m.vals, item)
		m.roles = append(m.roles, role.AsString())
	}
	if len(m.vals) == 0 {
		return Messages{}, &Error{Index: -1, Kind: KindMessage, Msg: "the conversation has no messages"}
	}
	return m, nil
}

// Options are apply_chat_template's arguments besides the conversation.
type Options struct {
	// AddGenerationPrompt appends the start of an assistant turn.
	AddGenerationPrompt bool
	// Tools is a JSON list of tool schemas, or nil (the template sees none).
	Tools json.RawMessage
	// Kwargs are extra template variables (enable_thinking, date_string,
	// ...); they override the special tokens, as in transformers.
	Kwargs map[string]any
	// Now, when set, is what strftime_now formats instead of the clock
	// (Llama 3 templates print today's date unless date_string is given).
	Now time.Time
}

// raised is the error of the template's raise_exception.
type raised struct{ msg string }

func (r *raised) Error() string { return r.msg }

// Render renders the conversation. A failure is an *Error naming the model
// folder, the first message at which the conversation fails (the shortest
// failing prefix, rendered without the generation prompt) and the
// template's words.
func (t *Template) Render(msgs Messages, opt Options) (string, error) {
	vars, err := t.vars(opt)
	if err != nil {
		return "", err
	}
	out, err := t.render(msgs.vals, opt.AddGenerationPrompt, vars)
	if err == nil {
		return out, nil
	}
	e := &Error{Dir: t.Dir, File: t.File, Index: -1, Kind: KindRender, Msg: err.Error()}
	var r *raised
	if errors.As(err, &r) {
		e.Kind, e.Msg = KindRaise, r.msg
	}
	for k := 1; k <= len(msgs.vals); k++ {
		if _, perr := t.render(msgs.vals[:k], false, vars); perr != nil {
			e.Index, e.Role = k-1, msgs.roles[k-1]
			break
		}
	}
	if e.Index < 0 && opt.AddGenerationPrompt {
		e.Msg += " (with add_generation_prompt)"
	}
	return "", e
}

func (t *Template) render(msgs []jinja.Value, addGen bool, vars map[string]jinja.Value) (string, error) {
	v := maps.Clone(vars)
	v["messages"] = jinja.NewList(msgs)
	v["add_generation_prompt"] = jinja.NewBool(addGen)
	return t.tmpl.RenderValues(v)
}

// vars builds the template variables other than messages and
// add_generation_prompt, in transformers' precedence: tools, documents,
// the special tokens, then Kwargs.
func (t *Template) vars(opt Options) (map[string]jinja.Value, error) {
	v := map[string]jinja.Value{"tools": jinja.None(), "documents": jinja.None()}
	if len(bytes.TrimSpace(opt.Tools)) > 0 {
		tools, err := decodeJSON(opt.Tools)
		if err != nil || !tools.IsList() {
			return nil, &Error{Dir: t.Dir, File: t.File, Index: -1, Kind: KindMessage, Msg: "tools must be a JSON list of tool schemas"}
		}
		v["tools"] = tools
	}
	for k, x := range t.Special {
		v[k] = jinja.FromGoValue(x)
	}
	for k, x := range opt.Kwargs {
		v[k] = jinja.FromGoValue(x)
	}
	v["raise_exception"] = jinja.NewCallable("raise_exception", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		msg := "raise_exception called without a message"
		if len(args) > 0 {
			msg = str(args[0])
		}
		return jinja.Undefined(), &raised{msg: msg}
	})
	if !opt.Now.IsZero() {
		now := opt.Now
		v["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			format := "%Y-%m-%d"
			if len(args) > 0 {
				format = str(args[0])
			}
			return jinja.NewString(strftime(now, format)), nil
		})
	}
	return v, nil
}

// strftime formats t with Python's strftime directives (those chat
// templates use).
func strftime(t time.Time, format string) string {
	r := strings.NewReplacer("%Y", "2006", "%y", "06", "%m", "01", "%d", "02", "%H", "15", "%M", "04", "%S", "05",
		"%B", "January", "%b", "Jan", "%A", "Monday", "%a", "Mon", "%p", "PM", "%%", "%")
	return t.Format(r.Replace(format))
}

// decodeJSON decodes JSON into jinja values, keeping the key order of
// objects (a Go map would lose it, and tojson prints it) and integers as
// integers.
func decodeJSON(data []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return jinja.Value{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jinja.Value{}, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Value{}, err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '[':
			var items []jinja.Value
			for dec.More() {
				it, err := decodeValue(dec)
				if err != nil {
					return jinja.Value{}, err
				}
				items = append(items, it)
			}
			_, err := dec.Token() // ]
			return jinja.NewList(items), err
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jinja.Value{}, err
				}
				val, err := decodeValue(dec)
				if err != nil {
					return jinja.Value{}, err
				}
				d.AsDict().Set(kt.(string), val)
			}
			_, err := dec.Token() // }
			return d, err
		}
	case string:
		return jinja.NewString(x), nil
	case bool:
		return jinja.NewBool(x), nil
	case nil:
		return jinja.None(), nil
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(x.String(), ".eE") {
			return jinja.NewInt(i), nil
		}
		f, err := x.Float64()
		return jinja.NewFloat(f), err
	}
	return jinja.Value{}, fmt.Errorf("unexpected JSON token %v", tok)
}

// str is a template value as {{ v }} prints it (a string without quotes).
func str(v jinja.Value) string {
	if v.IsString() {
		return v.AsString()
	}
	return v.String()
}
