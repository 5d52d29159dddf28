package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// SchemaVersion is the version of the event payload layout (the `schema`
// field). It changes only when a field changes meaning or goes away.
const SchemaVersion = 1

// Event is one thing a model found.
type Event struct {
	// Kind selects the topic: "keyword", "detection" and "motion" have
	// their own; any other kind (letters, digits, '_' and '-') goes to
	// event/<kind>.
	Kind  string
	Model string // the model (or source, for motion) that produced it
	// Time is when the event happened (the sensor data's time); zero means
	// the time of Publish. It is carried unchanged through outages.
	Time time.Time
	// Latency is the time from the sensor data to the result (inference and
	// post-processing).
	Latency time.Duration
	// Fields are the kind's own payload fields (label, score, boxes...).
	// Their names must not be those of the envelope (schema, seq, ts,
	// device, kind, model, latency_ms).
	Fields map[string]any
	// Data, if set, must be a JSON object; its members are added like
	// Fields (for callers that already hold JSON). Fields and Data may be
	// used together if their names differ.
	Data json.RawMessage
}

var reservedFields = []string{"schema", "seq", "ts", "device", "kind", "model", "latency_ms"}

var kindRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// eventTopic returns the topic of an event kind below the prefix.
func eventTopic(kind string) (string, error) {
	if !kindRE.MatchString(kind) {
		return "", fmt.Errorf("event kind %q: want 1-64 letters, digits, '_' or '-'", kind)
	}
	switch kind {
	case "keyword", "detection", "motion":
		return kind, nil
	}
	return "event/" + kind, nil
}

// tsLayout is RFC 3339 with milliseconds, always in UTC.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// encodeEvent renders the JSON payload of ev with sequence number seq:
// the envelope first, then the fields in name order.
func encodeEvent(ev *Event, seq uint64, device string, now time.Time) ([]byte, error) {
	t := ev.Time
	if t.IsZero() {
		t = now
	}
	var members map[string]json.RawMessage
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &members); err != nil || members == nil {
			return nil, fmt.Errorf("event %s: Data must be a JSON object: %v", ev.Kind, err)
		}
	}
	for k, v := range ev.Fields {
		if _, dup := members[k]; dup {
			return nil, fmt.Errorf("event %s: field %q is in both Fields and Data", ev.Kind, k)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("event %s: field %q: %v", ev.Kind, k, err)
		}
		if members == nil {
			members = make(map[string]json.RawMessage, len(ev.Fields))
		}
		members[k] = b
	}
	for _, k := range reservedFields {
		if _, bad := members[k]; bad {
			return nil, fmt.Errorf("event %s: field %q is reserved for the envelope", ev.Kind, k)
		}
	}
	lat := ev.Latency.Seconds() * 1000
	if math.IsNaN(lat) || lat < 0 {
		lat = 0
	}
	var b bytes.Buffer
	b.Grow(160 + 32*len(members))
	b.WriteString(`{"schema":`)
	b.WriteString(strconv.Itoa(SchemaVersion))
	b.WriteString(`,"seq":`)
	b.WriteString(strconv.FormatUint(seq, 10))
	b.WriteString(`,"ts":"`)
	b.WriteString(t.UTC().Format(tsLayout))
	b.WriteString(`","device":`)
	writeJSONString(&b, device)
	b.WriteString(`,"kind":`)
	writeJSONString(&b, ev.Kind)
	b.WriteString(`,"model":`)
	writeJSONString(&b, ev.Model)
	b.WriteString(`,"latency_ms":`)
	b.WriteString(strconv.FormatFloat(math.Round(lat*1000)/1000, 'f', -1, 64))
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteByte(',')
		writeJSONString(&b, k)
		b.WriteByte(':')
		if err := json.Compact(&b, members[k]); err != nil {
			return nil, fmt.Errorf("event %s: field %q: %v", ev.Kind, k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}
