package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// byteToRune is GPT-2's bytes_to_unicode table: printable Latin-1 bytes map
// to themselves, the others (controls, space, 0x7F–0xA0, 0xAD) to U+0100
// onwards, so that every byte is a visible character in the vocabulary
// (space → 'Ġ' U+0120, '\n' → 'Ċ' U+010A).
var byteToRune [256]rune

// runeToByte inverts byteToRune.
var runeToByte = map[rune]byte{}

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevel maps raw bytes to their byte-level string ("Ġthe" for " the").
func byteLevel(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteToRune[s[i]])
	}
	return b.String()
}

// merge is the result of merging a pair of tokens: its rank in the merges
// list (lower merges first) and the id of the merged token.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// BPE is a byte-level BPE tokenizer (GPT-2, Qwen2/3, Llama 3 family).
//
// Encode: split out added tokens (leftmost-longest), NFC-normalise the rest
// when the tokenizer.json says so, pre-tokenize each segment with the
// model's pattern, map each piece's bytes to byte-level characters and apply
// the merges in rank order (the lowest-ranked adjacent pair first, as
// OpenAI's encoder and HF tokenizers do). No BOS/EOS is added: the
// post-processor of a tokenizer.json is kept for Save but not applied.
//
// Decode: added tokens give their content verbatim; model tokens are mapped
// back to bytes and the bytes decoded as UTF-8, each invalid sequence
// becoming U+FFFD as in HF's from_utf8_lossy and JS's TextDecoder. Special
// tokens are included (HF skip_special_tokens=False). Unknown ids are skipped,
// as HF does.
//
// A BPE is safe for concurrent use.
type BPE struct {
	vocab    map[string]int // byte-level model token → id
	tokens   []string       // id → token (model and added), "" for unused ids
	merges   map[uint64]merge
	mergeStr [][2]string // merges in rank order, for Save
	byteID   [256]int32  // id of each single-byte token
	pat      pattern
	// addPrefixSpace is ByteLevel's add_prefix_space: a space is prepended
	// to each segment that does not start with one.
	addPrefixSpace bool
	nfc            bool // normalizer NFC
	ignoreMerges   bool // model.ignore_merges: a piece in the vocabulary is one token
	added          addedVocab
	roles
	// sp, when set, makes this a SentencePiece-style BPE over Unicode
	// characters (spm.go) instead of a byte-level one.
	sp *spModel

	// raw tokenizer.json sections kept verbatim for Save (nil: synthesised).
	raw rawSections

	mu    sync.RWMutex
	cache map[string][]int32
}

// cacheMax bounds the piece cache; it is cleared when full.
const cacheMax = 1 << 17

// newBPE builds the tokenizer from a vocabulary and merges (each a pair of
// vocabulary tokens), validating both: a byte-level one when sp is nil, else
// a SentencePiece-style one (spm.go).
func newBPE(vocab map[string]int, merges [][2]string, added []AddedToken, pat pattern, sp *spModel) (*BPE, error) {
	t := &BPE{vocab: vocab, pat: pat, sp: sp, merges: make(map[uint64]merge, len(merges)), mergeStr: merges, cache: map[string][]int32{}}
	maxID := -1
	for tok, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	for _, a := range added {
		maxID = max(maxID, a.ID)
	}
	if maxID >= 1<<31-1 {
		return nil, fmt.Errorf("token id %d too large", maxID)
	}
	t.tokens = make([]string, maxID+1)
	for tok, id := range vocab {
		if t.tokens[id] != "" {
			return nil, fmt.Errorf("tokens %q and %q share id %d", t.tokens[id], tok, id)
		}
		t.tokens[id] = tok
	}
	for b := 0; b < 256 && sp == nil; b++ {
		id, ok := vocab[string(byteToRune[b])]
		if !ok {
			return nil, fmt.Errorf("vocabulary lacks the byte-level token %q for byte %#02x (not a byte-level BPE?)", string(byteToRune[b]), b)
		}
		t.byteID[b] = int32(id)
	}
	for rank, m := range merges {
		a, okA := vocab[m[0]]
		b, okB := vocab[m[1]]
		id, okM := vocab[m[0]+m[1]]
		if !okA || !okB || !okM {
			return nil, fmt.Errorf("merge %d (%q %q): token not in the vocabulary", rank, m[0], m[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := t.merges[k]; !dup { // the first (lowest) rank wins, as in HF
			t.merges[k] = merge{rank: int32(rank), id: int32(id)}
		}
	}
	if err := t.added.init(added); err != nil {
		return nil, err
	}
	for _, a := range added {
		if prev := t.tokens[a.ID]; prev != "" && prev != a.Content {
			return nil, fmt.Errorf("added token %q has id %d of model token %q", a.Content, a.ID, prev)
		}
		t.tokens[a.ID] = a.Content
	}
	// Roles come from the added tokens; a model token named <|endoftext|>
	// is EOS only where no added token is (OpenAI's GPT-2 files).
	t.roles = detectRoles(func(s string) (int, bool) {
		a, ok := t.added.byContent[s]
		return a.ID, ok
	})
	if id, ok := vocab["<|endoftext|>"]; ok && t.roles.eos < 0 {
		t.roles.eos = id
	}
	return t, nil
}

// VocabSize is the largest token id + 1 (model and added tokens); a model's
// embedding may have more rows (padding).
func (t *BPE) VocabSize() int { return len(t.tokens) }

// TokenID returns the id of a token in its vocabulary form: byte-level for
// model tokens ("Ġthe"), the content for added tokens ("<|im_end|>").
func (t *BPE) TokenID(token string) (int, bool) {
	if a, ok := t.added.byContent[token]; ok {
		return a.ID, true
	}
	id, ok := t.vocab[token]
	return id, ok
}

// Token returns the vocabulary form of id (see TokenID).
func (t *BPE) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
		return "", false
	}
	return t.tokens[id], true
}

// Encode returns the token ids of text (no BOS/EOS added).
func (t *BPE) Encode(text string) []int {
	if t.sp != nil {
		return t.encodeSP(text)
	}
	var ids []int
	var pieces []string
	for _, seg := range t.added.split(text, t.normalize) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		s := seg.text
		if t.addPrefixSpace && !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		pieces = t.pat.split(pieces[:0], s)
		for _, p := range pieces {
			for _, id := range t.encodePiece(p) {
				ids = append(ids, int(id))
			}
		}
	}
	return ids
}

// normalize applies the tokenizer.json normalizer (NFC or none).
func (t *BPE) normalize(s string) string {
	if t.nfc {
		return norm.NFC.String(s)
	}
	return s
}

// encodePiece returns the ids of one pre-token, from the cache when it can.
func (t *BPE) encodePiece(p string) []int32 {
	if len(p) == 1 {
		return []int32{t.byteID[p[0]]}
	}
	t.mu.RLock()
	ids, ok := t.cache[p]
	t.mu.RUnlock()
	if ok {
		return ids
	}
	ids = t.bpe(p)
	if len(p) < 256 {
		t.mu.Lock()
		if len(t.cache) >= cacheMax {
			clear(t.cache)
		}
		t.cache[p] = ids
		t.mu.Unlock()
	}
	return ids
}

// symbol is one token of a piece being merged, in a doubly linked list.
type symbol struct {
	id         int32
	prev, next int32 // −1 at the ends
	dead       bool
}

// candidate is a mergeable adjacent pair (pos, next of pos).
type candidate struct {
	rank int32
	pos  int32
	id   int32
}

// bpe merges the bytes of p (see mergeIDs).
func (t *BPE) bpe(p string) []int32 {
	if t.ignoreMerges {
		if id, ok := t.vocab[byteLevel(p)]; ok {
			return []int32{int32(id)}
		}
	}
	ids := make([]int32, len(p))
	for i := 0; i < len(p); i++ {
		ids[i] = t.byteID[p[i]]
	}
	return t.mergeIDs(ids)
}

// mergeIDs applies the merges to a sequence of initial token ids (at least
// one): repeatedly the adjacent pair of lowest rank (leftmost on ties) is
// replaced by its merged token, until no pair has a merge. A min-heap of
// candidates keeps this O(n log n) for long pieces; a popped candidate whose
// pair has changed since it was pushed is skipped.
func (t *BPE) mergeIDs(ids []int32) []int32 {
	n := len(ids)
	syms := make([]symbol, n)
	for i := 0; i < n; i++ {
		syms[i] = symbol{id: ids[i], prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[n-1].next = -1
	var h candHeap
	push := func(pos int32) {
		nx := syms[pos].next
		if nx < 0 {
			return
		}
		if m, ok := t.merges[pairKey(syms[pos].id, syms[nx].id)]; ok {
			h.push(candidate{rank: m.rank, pos: pos, id: m.id})
		}
	}
	for i := 0; i < n-1; i++ {
		push(int32(i))
	}
	for len(h) > 0 {
		c := h.pop()
		s := &syms[c.pos]
		if s.dead || s.next < 0 {
			continue
		}
		// Stale if the pair at pos no longer merges into c.id. (The left
		// token only grows, so the same merged id means the same pair.)
		m, ok := t.merges[pairKey(s.id, syms[s.next].id)]
		if !ok || m.id != c.id {
			continue
		}
		right := &syms[s.next]
		s.id = c.id
		right.dead = true
		s.next = right.next
		if s.next >= 0 {
			syms[s.next].prev = c.pos
		}
		if s.prev >= 0 {
			push(s.prev)
		}
		push(c.pos)
	}
	out := ids[:0]
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out
}

// candHeap is a binary min-heap ordered by (rank, pos).
type candHeap []candidate

func (h candHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].pos < h[j].pos)
}

func (h *candHeap) push(c candidate) {
	*h = append(*h, c)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *candHeap) pop() candidate {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(a) && a.less(l, m) {
			m = l
		}
		if r < len(a) && a.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

// Decode returns the text of ids (see the type's doc comment).
func (t *BPE) Decode(ids []int) string {
	if t.sp != nil {
		return t.decodeSP(ids)
	}
	var buf []byte
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
			continue
		}
		tok := t.tokens[id]
		if t.added.byID[id] {
			buf = append(buf, tok...)
			continue
		}
		buf = appendByteLevelDecoded(buf, tok)
	}
	return lossyUTF8(buf)
}

// appendByteLevelDecoded appends the bytes a byte-level token stands for;
// a token with a character outside the byte alphabet is appended as its own
// UTF-8 (what HF's ByteLevel decoder does).
func appendByteLevelDecoded(buf []byte, tok string) []byte {
	start := len(buf)
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return append(buf[:start], tok...)
		}
		buf = append(buf, b)
	}
	return buf
}

// lossyUTF8 converts b to a string replacing each maximal ill-formed
// subsequence with one U+FFFD (the WHATWG/Unicode "substitution of maximal
// subparts" that Rust's from_utf8_lossy and JS's TextDecoder implement).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || w > 1 {
			sb.Write(b[i : i+w])
			i += w
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

// maximalSubpart is the length (≥ 1) of the ill-formed prefix of b that
// counts as one replacement: a valid lead byte followed by as many valid
// continuation bytes as it allows, stopping at the first invalid one.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the 2nd byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}
