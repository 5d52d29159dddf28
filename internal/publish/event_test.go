package publish

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestEncodeEvent(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	ev := Event{Kind: "detection", Model: "person_detect", Latency: 1500 * time.Microsecond,
		Fields: map[string]any{"score": 0.5, "label": "person", "boxes": [][]float64{{0.1, 0.2, 0.3, 0.4}}},
		Data:   json.RawMessage(`{"frame": 17, "extra": {"a": [1, 2]}}`)}
	b, err := encodeEvent(&ev, 7, "pi", now)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"schema":1,"seq":7,"ts":"2025-01-02T03:04:05.678Z","device":"pi","kind":"detection","model":"person_detect","latency_ms":1.5,` +
		`"boxes":[[0.1,0.2,0.3,0.4]],"extra":{"a":[1,2]},"frame":17,"label":"person","score":0.5}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if !json.Valid(b) {
		t.Error("invalid JSON")
	}
	// The event's own time wins over the time of Publish.
	ev.Time = time.Date(2024, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("X", -3600))
	b, _ = encodeEvent(&ev, 8, "pi", now)
	if !strings.Contains(string(b), `"ts":"2025-01-01T00:59:59.999Z"`) {
		t.Errorf("ts: %s", b)
	}
	// Quoting.
	b, err = encodeEvent(&Event{Kind: "keyword", Model: `a"b\`, Fields: map[string]any{"k\"": "<x>"}}, 1, "d", now)
	if err != nil || !json.Valid(b) {
		t.Errorf("%s %v", b, err)
	}
}

func TestEncodeEventRejects(t *testing.T) {
	now := time.Now()
	for _, ev := range []Event{
		{Kind: "keyword", Fields: map[string]any{"ts": 1}},
		{Kind: "keyword", Data: json.RawMessage(`{"device":"x"}`)},
		{Kind: "keyword", Data: json.RawMessage(`{"a":1}`), Fields: map[string]any{"a": 2}},
		{Kind: "keyword", Data: json.RawMessage(`"text"`)},
		{Kind: "keyword", Data: json.RawMessage(`{"a":`)},
		{Kind: "keyword", Fields: map[string]any{"c": make(chan int)}},
	} {
		if b, err := encodeEvent(&ev, 1, "d", now); err == nil {
			t.Errorf("%+v encoded as %s", ev, b)
		}
	}
}

func TestEventTopics(t *testing.T) {
	for kind, want := range map[string]string{"keyword": "keyword", "detection": "detection", "motion": "motion", "glass_break": "event/glass_break"} {
		if got, err := eventTopic(kind); err != nil || got != want {
			t.Errorf("%s: %q %v", kind, got, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a+", "#", strings.Repeat("x", 65)} {
		if _, err := eventTopic(bad); err == nil {
			t.Errorf("kind %q accepted", bad)
		}
	}
}
