package chat

import (
	"strings"

	"github.com/rljob/rljob/trainer/tokenizer"
)

// turnProbe is the assistant content whose rendering shows how the
// template ends an assistant turn.
const turnProbe = "rljob end-of-turn probe"

// EndOfTurn returns the token that closes an assistant turn in this
// template (Qwen's <|im_end|>, Llama 3's <|eot_id|>, Gemma's <end_of_turn>,
// DeepSeek's and Llama 2's EOS), or −1 when it has none that tok knows as
// an added token. It renders [user, assistant(probe)] and takes the first
// token after the probe's text, when that token is an added one: the
// generation should stop where the template would end the turn.
func (t *Template) EndOfTurn(tok tokenizer.Tokenizer) int {
	msgs, err := ParseMessages([]byte(`[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "` + turnProbe + `"}]`))
	if err != nil {
		return -1
	}
	out, err := t.Render(msgs, Options{})
	if err != nil {
		return -1
	}
	i := strings.LastIndex(out, turnProbe)
	if i < 0 {
		return -1
	}
	ids := tok.Encode(out[i+len(turnProbe):])
	if len(ids) == 0 || !tokenizer.IsAdded(tok, ids[0]) {
		return -1
	}
	return ids[0]
}
