package httpapi

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// params is a query string parsed once, with typed accessors that turn a
// malformed value into a 400 naming the parameter.
type params []param

type param struct {
	key, value string
	// raw is the value as sent, before decoding: what the strict
	// accessors judge (see strict) and quote.
	raw string
}

// parseQuery parses raw (everything after the first '?') exactly like
// libevent 1.4's evhttp_parse_query, which simplequeue clients depend on:
//
//   - raw is split on '&' and each piece at its first '=';
//   - a piece without '=' (an empty piece too) stops parsing: it and every
//     later piece are ignored, so "foo&data=x" has no data;
//   - values are decoded (%XX is that byte, '+' a space, a malformed '%'
//     stays literal) and end at a decoded NUL, as C strings do; keys are
//     not decoded;
//   - a raw NUL ends the whole query string.
//
// Where a name or a message is expected, the strict accessors (strict,
// noNUL and those built on them) refuse what libevent would cut or keep
// literally, rather than act on a value the client did not send.
func parseQuery(raw string) params { return parseQueryInto(nil, raw) }

// parseQueryInto is parseQuery appending to p (which may have room for the
// parameters, saving an allocation).
func parseQueryInto(p params, raw string) params {
	if i := strings.IndexByte(raw, 0); i >= 0 {
		raw = raw[:i]
	}
	for raw != "" {
		piece, rest, _ := strings.Cut(raw, "&")
		key, value, ok := strings.Cut(piece, "=")
		if !ok {
			break
		}
		p = append(p, param{key: key, value: decodeValue(value), raw: value})
		raw = rest
	}
	return p
}

// decodeValue is libevent's evhttp_decode_uri_internal with plus decoding,
// cut at the first NUL.
func decodeValue(s string) string {
	if strings.IndexAny(s, "%+") < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		}
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// get returns the first value whose key equals name ignoring ASCII case
// (libevent's strcasecmp).
func (p params) get(name string) (string, bool) {
	kv, ok := p.lookup(name)
	return kv.value, ok
}

func (p params) lookup(name string) (param, bool) {
	for _, kv := range p {
		if equalFoldASCII(kv.key, name) {
			return kv, true
		}
	}
	return param{}, false
}

// strict returns name's value where a name is expected (queue=, topic=,
// dead_letter=): a value whose raw form holds an escaped NUL (which
// libevent's decoding would cut the value at, so that queue=a%00b would
// be queue "a"), a '%' that does not start a valid escape (libevent keeps
// it literally), or that decodes to invalid UTF-8 is a 400 of kind that
// names the parameter and what is wrong; never a shorter or guessed name.
func (p params) strict(name string, kind *api.Error) (string, bool, error) {
	kv, ok := p.lookup(name)
	if !ok {
		return "", false, nil
	}
	why := nulIn(kv.raw)
	if why == "" {
		why = badEscapeIn(kv.raw)
	}
	if why == "" && !utf8.ValidString(kv.value) {
		why = "it is not valid UTF-8"
	}
	if why != "" {
		return "", true, kind.Errorf("invalid %s=%s: %s; want %s", name, api.Quote(kv.raw), why, api.NamePattern)
	}
	return kv.value, true, nil
}

// noNUL returns name's value, or a 400 naming the parameter when it
// decodes to a NUL byte, where libevent would cut the value (data=, id=,
// separator=). why says what to do instead.
func (p params) noNUL(name, why string) (string, bool, error) {
	kv, ok := p.lookup(name)
	if !ok {
		return "", false, nil
	}
	if nul := nulIn(kv.raw); nul != "" {
		return "", true, api.ErrBadRequest.Errorf("invalid %s=%s: %s%s", name, api.Quote(kv.raw), nul, why)
	}
	return kv.value, true, nil
}

// nulIn says where a raw value decodes to a NUL byte, "" if it does not.
func nulIn(raw string) string {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && raw[i+1] == '0' && raw[i+2] == '0' {
			return fmt.Sprintf("%%00 at byte %d is a NUL byte", i)
		}
	}
	return ""
}

// badEscapeIn says where a raw value has a '%' that does not start an
// escape of two hex digits, "" if it has none.
func badEscapeIn(raw string) string {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		if i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			i += 2
			continue
		}
		return fmt.Sprintf("the %% at byte %d is not followed by two hex digits", i)
	}
	return ""
}

func (p params) has(name string) bool {
	_, ok := p.get(name)
	return ok
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// queue returns queue=NAME, api.DefaultQueue when absent.
func (p params) queue() (string, error) {
	v, ok, err := p.strict("queue", api.ErrInvalidQueueName)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return api.DefaultQueue, nil
	}
	return v, api.CheckQueueName(v)
}

// anyQueue returns queue=NAME for ack, nack and touch, where an absent or
// empty queue means "any queue" ("").
func (p params) anyQueue() (string, error) {
	v, _, err := p.strict("queue", api.ErrInvalidQueueName)
	if err != nil || v == "" {
		return "", err
	}
	return v, api.CheckQueueName(v)
}

// topic returns topic=NAME, api.DefaultTopic when absent.
func (p params) topic() (string, error) {
	v, ok, err := p.strict("topic", api.ErrInvalidTopicName)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return api.DefaultTopic, nil
	}
	return v, api.CheckTopicName(v)
}

// duration parses name as a Go duration in [0, max]; ok reports presence.
func (p params) duration(name string, max time.Duration) (d time.Duration, ok bool, err error) {
	v, ok := p.get(name)
	if !ok {
		return 0, false, nil
	}
	d, err = api.ParseDuration(v)
	if err != nil {
		return 0, true, api.ErrBadRequest.Errorf("invalid %s=%s: %v", name, api.Quote(v), err)
	}
	if d > max {
		return 0, true, api.ErrBadRequest.Errorf("invalid %s=%s: the maximum is %s", name, api.Quote(v), api.FormatDuration(max))
	}
	return d, true, nil
}

// uint parses name as a decimal integer in [0, max]; ok reports presence.
func (p params) uint(name string, max uint64) (n uint64, ok bool, err error) {
	v, ok := p.get(name)
	if !ok {
		return 0, false, nil
	}
	n, err = strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, true, api.ErrBadRequest.Errorf("invalid %s=%s: want an integer from 0 to %d", name, api.Quote(v), max)
	}
	return n, true, nil
}

// flag parses a boolean such as stale=1; absent is false.
func (p params) flag(name string) (bool, error) {
	v, _ := p.get(name)
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, api.ErrBadRequest.Errorf("invalid %s=%s: want 1 or 0", name, api.Quote(v))
}

// stale reports stale=1: answer a read from this node's state.
func (p params) stale() (bool, error) { return p.flag("stale") }

// reqID returns id=KEY of /put and /mput ("" when absent).
func (p params) reqID() (string, error) {
	// No NUL: the keys of a large /mput's commands are KEY, a NUL and a
	// number (putCommands), which a client's key must not be able to spell.
	v, ok, err := p.noNUL("id", "")
	if err != nil || !ok {
		return "", err
	}
	if v == "" || len(v) > maxReqIDLen {
		return "", api.ErrBadRequest.Errorf("invalid id=%s: want a key of 1 to %d bytes", api.Quote(v), maxReqIDLen)
	}
	return v, nil
}

// ids returns id=ID[,ID...] of /ack, /nack and /touch: decimal message ids,
// each listed once.
func (p params) ids() ([]uint64, error) {
	v, ok := p.get("id")
	if !ok || v == "" {
		return nil, api.ErrBadRequest.Errorf("missing id: want id=ID or id=ID,ID,...")
	}
	if strings.Count(v, ",") >= maxIDs {
		return nil, api.ErrBadRequest.Errorf("too many ids: at most %d per request", maxIDs)
	}
	parts := strings.Split(v, ",")
	ids := make([]uint64, 0, len(parts))
	seen := make(map[uint64]bool, len(parts))
	for _, s := range parts {
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, api.ErrBadRequest.Errorf("invalid id=%s: want decimal message ids separated by commas", api.Quote(v))
		}
		if seen[id] {
			return nil, api.ErrBadRequest.Errorf("invalid id=%s: id %d is listed twice", api.Quote(v), id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}

// atoi is C's atoi, which simplequeue applies to items=: leading space and
// one sign are skipped, digits are read up to the first non-digit, no
// digits is 0 ("3abc" is 3, "abc" is 0). Overflow saturates.
func atoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || '\t' <= s[i] && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n int64
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		n = min(n*10+int64(s[i]-'0'), math.MaxInt32)
	}
	if neg {
		n = -n
	}
	return int(n)
}

// splitRecords splits /mput input at every occurrence of sep, scanning left
// to right like simplequeue, but skips empty records (adjacent, leading or
// repeated trailing separators), which hang the reference. Records alias
// data. sep must not be empty.
func splitRecords(data, sep []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	// One allocation: at most one record more than separators.
	out := make([][]byte, 0, bytes.Count(data, sep)+1)
	for len(data) > 0 {
		i := bytes.Index(data, sep)
		if i < 0 {
			out = append(out, data)
			break
		}
		if i > 0 {
			out = append(out, data[:i:i])
		}
		data = data[i+len(sep):]
	}
	return out
}

// joinItems writes /mget's text body: after the item with 0-based index i
// the separator follows if i < items-1, where items is the requested count,
// so a short queue yields a trailing separator (spec 2.5).
func joinItems(msgs []fsm.Message, sep string, items int) []byte {
	n := 0
	for _, m := range msgs {
		n += len(m.Data) + len(sep)
	}
	buf := make([]byte, 0, n)
	for i, m := range msgs {
		buf = append(buf, m.Data...)
		if i < items-1 {
			buf = append(buf, sep...)
		}
	}
	return buf
}
