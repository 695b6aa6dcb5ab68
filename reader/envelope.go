package reader

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Envelope field names: pysimplehttp BaseReader's, plus data_encoding.
const (
	fieldData      = "data"
	fieldTries     = "tries"
	fieldRetryOn   = "retry_on"
	fieldStarted   = "started"
	fieldTasksLeft = "tasks_left"
	// fieldEncoding is this package's addition: how data carries a body
	// that is not a JSON value (see the package documentation).
	fieldEncoding = "data_encoding"
)

// Values of data_encoding.
const (
	encodingText   = "text"   // data is a JSON string holding the body verbatim
	encodingBase64 = "base64" // data is a JSON string holding the body in standard base64
)

// envelope is BaseReader's requeue envelope.
type envelope struct {
	// data is the JSON text of the data value, verbatim as read (without
	// surrounding white space) or as built when wrapping.
	data json.RawMessage
	// encoding is data_encoding: "" (data is the message), "text" or
	// "base64".
	encoding string
	tries    int
	// retryOn is retry_on in Unix seconds; 0 is null (no delay).
	retryOn float64
	// started is Unix seconds.
	started   int64
	tasksLeft []string
	// extra holds the other keys of a read envelope, written back as they
	// were (BaseReader keeps unknown keys too).
	extra map[string]json.RawMessage
}

// parseMessage reads a message body as the reader sees it: an envelope when
// the body is a JSON object with a truthy "data" and a numeric "tries",
// otherwise a raw message, which is wrapped (tries 0, started now, every
// task left). It also returns the body tasks see: the raw body for a raw
// message, the data (decoded per data_encoding) for an envelope. tasks are
// the reader's task names, sorted, for a missing tasks_left.
func parseMessage(body []byte, now time.Time, tasks []string) (env envelope, payload []byte, wrapped bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(trimmed, &obj) == nil {
			if e, ok := readEnvelope(obj, now, tasks); ok {
				return e, e.payload(), false
			}
		}
	}
	return wrap(body, now, tasks), body, true
}

// wrap builds the envelope of a raw message. A body that is a truthy JSON
// value is the data as it is. Anything else is carried as a JSON string
// with data_encoding: "text" when it is valid UTF-8, "base64" otherwise.
// A falsy JSON value (0, "", [], {}, false, null) is carried as text too:
// as data it would make the envelope unrecognisable on the next read, for
// pysimplehttp and for this package alike.
func wrap(body []byte, now time.Time, tasks []string) envelope {
	e := envelope{started: now.Unix(), tasksLeft: slices.Clone(tasks)}
	trimmed := bytes.TrimSpace(body)
	switch {
	case json.Valid(trimmed) && truthy(trimmed):
		e.data = slices.Clone(trimmed)
	case utf8.Valid(body):
		e.data, e.encoding = jsonString(string(body)), encodingText
	default:
		e.data, e.encoding = jsonString(base64.StdEncoding.EncodeToString(body)), encodingBase64
	}
	return e
}

// readEnvelope takes obj as an envelope if its data is truthy and its tries
// a number. Other fields of the wrong type are ignored: a bad retry_on is
// no delay, a bad started is now, a missing or bad tasks_left is every
// task.
func readEnvelope(obj map[string]json.RawMessage, now time.Time, tasks []string) (envelope, bool) {
	data, ok := obj[fieldData]
	if !ok || !truthy(data) {
		return envelope{}, false
	}
	tries, ok := jsonNumber(obj[fieldTries])
	if !ok || tries != math.Trunc(tries) || math.Abs(tries) > 1e9 {
		return envelope{}, false
	}
	e := envelope{data: data, tries: max(int(tries), 0), started: now.Unix()}
	if v, ok := jsonNumber(obj[fieldRetryOn]); ok && v > 0 {
		e.retryOn = v
	}
	if v, ok := jsonNumber(obj[fieldStarted]); ok && math.Abs(v) < 1e15 {
		e.started = int64(v)
	}
	var left []string
	if raw, ok := obj[fieldTasksLeft]; ok && json.Unmarshal(raw, &left) == nil && left != nil {
		e.tasksLeft = left
	} else {
		e.tasksLeft = slices.Clone(tasks)
	}
	var enc string
	if raw, ok := obj[fieldEncoding]; ok && json.Unmarshal(raw, &enc) == nil && (enc == encodingText || enc == encodingBase64) {
		e.encoding = enc
	}
	for k, v := range obj {
		switch k {
		case fieldData, fieldTries, fieldRetryOn, fieldStarted, fieldTasksLeft:
			continue
		case fieldEncoding:
			if e.encoding != "" {
				continue
			}
		}
		if e.extra == nil {
			e.extra = map[string]json.RawMessage{}
		}
		e.extra[k] = v
	}
	if e.encoding != "" {
		if _, ok := e.decodeData(); !ok {
			// Not what we write: keep the field as an unknown one and
			// hand the data over as JSON.
			if e.extra == nil {
				e.extra = map[string]json.RawMessage{}
			}
			e.extra[fieldEncoding] = obj[fieldEncoding]
			e.encoding = ""
		}
	}
	return e, true
}

// payload is the message body tasks see.
func (e *envelope) payload() []byte {
	if b, ok := e.decodeData(); ok {
		return b
	}
	return e.data
}

func (e *envelope) decodeData() ([]byte, bool) {
	if e.encoding == "" {
		return e.data, true
	}
	var s string
	if json.Unmarshal(e.data, &s) != nil {
		return nil, false
	}
	if e.encoding == encodingText {
		return []byte(s), true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// due reports whether the message may be processed at now: retry_on is
// null or not later than now+slack. Otherwise wait is how long until it is.
func (e *envelope) due(now time.Time, slack time.Duration) (ok bool, wait time.Duration) {
	if e.retryOn == 0 {
		return true, 0
	}
	at := time.Unix(0, 0).Add(time.Duration(e.retryOn * float64(time.Second)))
	if d := at.Sub(now); d > slack {
		return false, d
	}
	return true, 0
}

// setRetryOn sets retry_on to t, in seconds with microseconds, as Python's
// time.time() gives it.
func (e *envelope) setRetryOn(t time.Time) {
	e.retryOn = float64(t.UnixMicro()) / 1e6
}

// encode writes the envelope as compact JSON, the fields BaseReader
// writes first, in the order it writes them, then data_encoding and any
// unknown fields (sorted by name). tries and started are integers,
// retry_on a float with six decimals or null, tasks_left a list of
// strings, data verbatim.
func (e *envelope) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"started":`)
	b.WriteString(strconv.FormatInt(e.started, 10))
	b.WriteString(`,"tasks_left":[`)
	for i, t := range e.tasksLeft {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(t))
	}
	b.WriteString(`],"tries":`)
	b.WriteString(strconv.Itoa(e.tries))
	b.WriteString(`,"data":`)
	b.Write(e.data)
	b.WriteString(`,"retry_on":`)
	if e.retryOn == 0 {
		b.WriteString("null")
	} else {
		b.WriteString(strconv.FormatFloat(e.retryOn, 'f', 6, 64))
	}
	if e.encoding != "" {
		b.WriteString(`,"data_encoding":`)
		b.Write(jsonString(e.encoding))
	}
	keys := make([]string, 0, len(e.extra))
	for k := range e.extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteByte(',')
		b.Write(jsonString(k))
		b.WriteByte(':')
		b.Write(e.extra[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// clone returns a copy whose tasks_left can be changed.
func (e envelope) clone() envelope {
	e.tasksLeft = slices.Clone(e.tasksLeft)
	return e
}

// truthy reports Python's truth value of a JSON value: false for null,
// false, 0, "", [] and {}.
func truthy(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case 'n', 'f':
		return false
	case 't':
		return true
	case '"':
		return len(raw) > 2
	case '[':
		var a []json.RawMessage
		return json.Unmarshal(raw, &a) != nil || len(a) > 0
	case '{':
		var o map[string]json.RawMessage
		return json.Unmarshal(raw, &o) != nil || len(o) > 0
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return err != nil || f != 0
}

// jsonNumber reads a JSON number (int or float); ok is false for anything
// else, null included.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}
