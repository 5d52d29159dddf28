// Package publish is edged's MQTT side: it turns what the models find into
// MQTT messages through a durable outbox, so that no event is lost while
// the broker is away or the daemon is killed, announces the device's
// availability and its Home Assistant entities, and receives commands.
// It imports nothing else from edged.
//
// # Use
//
//	c, err := publish.New(cfg, publish.Options{Logger: log, Registerer: reg, OnCommand: onCmd, Device: dev, Entities: ents})
//	seq, err := c.Publish(ctx, publish.Event{Kind: "keyword", Model: "micro_speech", Time: t, Latency: d,
//		Fields: map[string]any{"label": "yes", "score": 0.93}})
//	c.SetSourceStatus("camera", "failed", err)
//	c.Close(ctx) // delivers what it can before ctx ends, publishes "offline"
//
// New returns at once, also when no broker is reachable: the client keeps
// connecting in the background (1 s back-off doubling to
// MaxReconnectInterval), and Publish works throughout. Where no broker is
// configured the daemon runs one in-process with StartEmbeddedBroker.
//
// # Topics
//
// Everything is under the prefix, by default edged/<device_id>:
//
//	<prefix>/status                 "online" / "offline", retained, QoS 1. "online" is published on
//	                                every connection; "offline" is the last will (sent by the broker
//	                                when the connection dies) and is published by Close.
//	<prefix>/keyword                events of kind "keyword"    } QoS 1 (Config.QoS),
//	<prefix>/detection              events of kind "detection"  } not retained,
//	<prefix>/motion                 events of kind "motion"     } through the outbox
//	<prefix>/event/<kind>           events of any other kind    }
//	<prefix>/source/<name>/status   a source's state, retained, QoS 1 (SetSourceStatus)
//	<prefix>/metrics                periodic (Config.MetricsInterval) QoS 0, not durable
//	<prefix>/cmd/#                  subscribed, QoS 1: <prefix>/cmd/reload calls
//	                                Options.OnCommand("reload", payload); retained commands are ignored
//	<discovery prefix>/<component>/<device_id>/<object_id>/config
//	                                Home Assistant discovery, retained (see below)
//
// The session is clean (the broker keeps nothing for us between
// connections); subscriptions, "online", the source states and the
// discovery configs are sent again on every connection, so a broker that
// restarted without persistence gets them back.
//
// # Event payload (schema 1)
//
// One JSON object: the envelope, then the event's Fields (and Data
// members) in name order:
//
//	{"schema":1,"seq":1042,"ts":"2025-06-01T08:20:30.123Z","device":"kitchen","kind":"keyword",
//	 "model":"micro_speech","latency_ms":12.345,"label":"yes","score":0.93}
//
//	schema      payload layout version (SchemaVersion); changes only when a field changes meaning
//	seq         per-device sequence number: 1, 2, 3... strictly increasing, persisted across
//	            restarts, never reused once sent. A subscriber that sees seq n+2 after n knows one is missing
//	            (only the outbox's drop policy below can cause that); seq ≤ the highest seen is a
//	            duplicate (QoS 1 redelivery, or a resend after a crash) and can be ignored.
//	ts          when the event happened (Event.Time, or the time of Publish), RFC 3339 UTC with
//	            milliseconds; kept unchanged however late the event is delivered
//	device      Config.DeviceID
//	kind        Event.Kind
//	model       Event.Model
//	latency_ms  Event.Latency in milliseconds (sensor data → result), µs resolution
//
// The source status payload is {"schema","ts","device","source","state","error"}
// and the metrics payload {"schema","ts","device","outbox_events","outbox_bytes",
// "last_seq", ...Options.Metrics()}.
//
// # Delivery and the outbox
//
// Publish assigns the seq, appends the event to the outbox and returns
// once it is on disk; a sender then publishes waiting events in seq order
// (up to 64 in flight) whenever a broker is connected, and removes an
// event only when the broker has acknowledged it and every event before it
// (PUBACK at QoS 1, PUBCOMP at 2; at QoS 0 "written to the socket" is all
// there is). On every new connection the sender starts again from the
// first unacknowledged event, so events in flight when a connection died
// are sent again: subscribers may see duplicates, never gaps or reordering
// (apart from the drop policy). Events keep their seq and ts.
//
// Reconnection is done here rather than by paho's auto-reconnect: paho's
// resume path re-sends from its own in-memory store and completes the
// original publish tokens before the broker has acknowledged the resend,
// which would let the outbox forget an undelivered event. paho hands
// packets to its writer through a channel that outlives a connection, so
// before connecting again the client waits until no Publish started on the
// old connection is still pending (at most 5 s, paho's write timeout);
// otherwise that event could reach the broker ahead of the resends of the
// events before it.
//
// On-disk format. Config.Outbox.Dir holds:
//
//	<first seq, 20 digits>.seg   segments: a 16-byte header ("EDGEDOB1", first seq uint64 LE)
//	                             and records back to back, each
//	                               length  uint32 LE   bytes of the body
//	                               crc     uint32 LE   CRC-32C (Castagnoli) of the body
//	                               body:   seq uint64 LE, enqueue time int64 LE (Unix ns),
//	                                       topic length uint16 LE, topic (below the prefix),
//	                                       payload (the JSON above)
//	acked                        the acknowledged position: "EDGEDAK1", seq uint64 LE,
//	                             CRC-32C of the first 16 bytes (uint32 LE)
//	lock                         flock'ed while open: two processes cannot share an outbox
//
// Durability. Publish returns only after an fsync that covers its record
// (group commit: while one fsync runs, the appends that arrive wait for
// the next, which covers them all; Outbox.SyncInterval adds an optional
// window before each fsync to batch more). Events are sent only once
// durable, so a seq seen by a subscriber is never reused after a crash.
// The acknowledged position is written (temp file, fsync, rename) about
// once a second, not per acknowledgement: after a crash the events
// acknowledged since then are sent again. A segment is deleted once the
// written position covers all of it; the segment taking appends is kept,
// and its name records the next seq even when it is empty, so seq
// survives restarts with everything delivered.
//
// Recovery. On start every segment is read and checked (length, CRC, seq
// continuity). A damaged record at the end of the last segment — an append
// cut short by a crash or power loss, whose Publish had not returned — is
// cut off with a warning in the log. Damage anywhere else (a failing SD
// card) loses the rest of that segment: logged as an error and counted as
// dropped with reason "corrupt". Unacknowledged events are then sent again.
//
// Bounds and drop policy. The waiting events are bounded by
// Outbox.MaxBytes (their framed size; default 64 MiB; files on disk may
// exceed it by up to one segment, MaxBytes/16 capped at 4 MiB) and
// Outbox.MaxAge (default 7 days, measured from Publish by the wall clock:
// a board without an RTC that jumps its clock forward at boot ages events
// early). When an event does not fit, the OLDEST waiting events are
// dropped to make room, and events older than MaxAge are dropped when
// appending, when sending and every second. Publish never blocks on a full
// outbox or an absent broker; it waits only for the disk. Dropped events
// are counted in edged_mqtt_events_dropped_total{reason="full"|"age"|"corrupt"}
// and logged (first drop at once, then a summary at most every 10 s) with
// their seq range; subscribers see the gap in seq. An event larger than
// MaxBytes (or 1 MiB) is refused with an error. If an fsync fails the
// outbox refuses further events until restart rather than claim they are
// durable.
//
// # Home Assistant discovery
//
// With Config.Discovery.Enabled, each Options.Entities entry is announced
// retained on <discovery prefix>/<component>/<device_id>/<object_id>/config with
// "~" set to the topic prefix, availability_topic "~/status" (so entities
// go unavailable with the last will), unique_id "<device_id>_<object_id>"
// and a device block {identifiers ["edged_<device_id>"], name, model,
// manufacturer, sw_version}. They are announced on every connection and
// again whenever <discovery prefix>/status says "online" (Home Assistant
// restarted). SetEntities replaces the list and deletes the configs of
// removed entities. BinarySensor (e.g. person detection as occupancy, off
// after a delay), Sensor (e.g. last keyword) and EventEntity (an event per
// keyword) build the usual entities; their templates pick their model's
// events from the shared topic.
//
// # Metrics
//
// Registered on Options.Registerer: edged_mqtt_events_published_total{kind},
// edged_mqtt_events_sent_total, edged_mqtt_events_acked_total,
// edged_mqtt_events_dropped_total{reason}, edged_mqtt_outbox_events,
// edged_mqtt_outbox_bytes, edged_mqtt_connected, edged_mqtt_connects_total
// and edged_mqtt_ack_latency_seconds (Publish → broker acknowledgement,
// outages included).
package publish
