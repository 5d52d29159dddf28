package publish

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DeviceInfo is the device block of every discovery config: the board as
// Home Assistant's device registry shows it.
type DeviceInfo struct {
	Name         string // default: the device id
	Model        string // e.g. "Raspberry Pi 4 Model B"
	Manufacturer string // default "edged"
	SWVersion    string // edged's version
}

// Entity is one Home Assistant entity announced by MQTT discovery. Its
// config is published retained to
// <discovery prefix>/<Component>/<device_id>/<ObjectID>/config with the
// device block, unique_id "<device_id>_<ObjectID>", availability on the
// status topic, and "~" set to the topic prefix so topics in Config may
// start with "~/". BinarySensor, Sensor and EventEntity build the usual
// ones.
type Entity struct {
	Component string // "binary_sensor", "sensor", "event", ...
	ObjectID  string // letters, digits, '_' and '-'; unique on the device
	Name      string
	// Topic is the state topic below the prefix ("detection", "keyword",
	// "motion", "event/<kind>", "source/<name>/status"...).
	Topic string
	// Config holds the component's other keys (value_template,
	// device_class, off_delay, event_types, icon, ...).
	Config map[string]any
}

var componentRE = regexp.MustCompile(`^[a-z_]+$`)

func checkEntities(ents []Entity) error {
	seen := map[string]bool{}
	for i := range ents {
		if err := ents[i].check(); err != nil {
			return err
		}
		key := ents[i].Component + "/" + ents[i].ObjectID
		if seen[key] {
			return fmt.Errorf("publish: entity %s is listed twice", key)
		}
		seen[key] = true
	}
	return nil
}

func (e *Entity) check() error {
	switch {
	case !componentRE.MatchString(e.Component):
		return fmt.Errorf("publish: entity %q: component %q is not a Home Assistant component name", e.ObjectID, e.Component)
	case !idRE.MatchString(e.ObjectID):
		return fmt.Errorf("publish: entity object id %q: only letters, digits, '_' and '-' are allowed", e.ObjectID)
	case e.Topic != "" && checkTopicName(e.Topic) != nil:
		return fmt.Errorf("publish: entity %q: topic %q: %v", e.ObjectID, e.Topic, checkTopicName(e.Topic))
	}
	return nil
}

// BinarySensor is an entity that turns on when an event of kind from model
// arrives (optionally only when the event's field equals value) and off
// after offDelay without one: e.g. a person-detection model as an
// "occupancy" sensor.
func BinarySensor(objectID, name, kind, model, field, value string, offDelay time.Duration, deviceClass string) Entity {
	topic, _ := eventTopic(kind)
	cond := fmt.Sprintf("value_json.model == %s", jinjaString(model))
	if field != "" {
		cond += fmt.Sprintf(" and value_json[%s] == %s", jinjaString(field), jinjaString(value))
	}
	cfg := map[string]any{
		// Home Assistant ignores an empty rendering, so events of other
		// models on the same topic leave the state alone.
		"value_template": "{{ 'ON' if " + cond + " else '' }}",
		"payload_on":     "ON",
		"payload_off":    "OFF",
		"off_delay":      max(1, int(offDelay.Round(time.Second)/time.Second)),
	}
	if deviceClass != "" {
		cfg["device_class"] = deviceClass
	}
	return Entity{Component: "binary_sensor", ObjectID: objectID, Name: name, Topic: topic, Config: cfg}
}

// Sensor is an entity whose state is one field of the events of kind from
// model: e.g. the last keyword heard ("keyword", "kws", "label").
func Sensor(objectID, name, kind, model, field string) Entity {
	topic, _ := eventTopic(kind)
	return Entity{Component: "sensor", ObjectID: objectID, Name: name, Topic: topic, Config: map[string]any{
		"value_template": fmt.Sprintf("{{ value_json[%s] if value_json.model == %s else '' }}", jinjaString(field), jinjaString(model)),
		"icon":           "mdi:account-voice",
	}}
}

// EventEntity is a Home Assistant event entity fired for every event of
// kind from model, with the event's field as the event type (one of
// eventTypes, e.g. the keywords a model knows); the whole payload comes
// along as attributes.
func EventEntity(objectID, name, kind, model, field string, eventTypes []string) Entity {
	topic, _ := eventTopic(kind)
	return Entity{Component: "event", ObjectID: objectID, Name: name, Topic: topic, Config: map[string]any{
		"event_types": eventTypes,
		"value_template": fmt.Sprintf("{%% if value_json.model == %s %%}{{ dict(value_json, event_type=value_json[%s]) | to_json }}{%% endif %%}",
			jinjaString(model), jinjaString(field)),
	}}
}

// jinjaString quotes s as a Jinja string literal.
func jinjaString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (c *Client) discoveryTopic(e *Entity) string {
	return fmt.Sprintf("%s/%s/%s/%s/config", c.cfg.Discovery.Prefix, e.Component, c.cfg.DeviceID, e.ObjectID)
}

func (c *Client) discoveryPayload(e *Entity) ([]byte, error) {
	d := c.opt.Device
	dev := map[string]any{
		"identifiers":  []string{"edged_" + c.cfg.DeviceID},
		"name":         d.Name,
		"manufacturer": d.Manufacturer,
	}
	if d.Name == "" {
		dev["name"] = c.cfg.DeviceID
	}
	if d.Manufacturer == "" {
		dev["manufacturer"] = "edged"
	}
	if d.Model != "" {
		dev["model"] = d.Model
	}
	if d.SWVersion != "" {
		dev["sw_version"] = d.SWVersion
	}
	p := map[string]any{}
	for k, v := range e.Config {
		p[k] = v
	}
	p["~"] = c.prefix
	p["name"] = e.Name
	p["unique_id"] = c.cfg.DeviceID + "_" + e.ObjectID
	p["availability_topic"] = "~/status"
	p["payload_available"] = StatusOnline
	p["payload_not_available"] = StatusOffline
	p["device"] = dev
	if e.Topic != "" {
		p["state_topic"] = "~/" + e.Topic
		if _, ok := p["qos"]; !ok {
			p["qos"] = 1
		}
	}
	return json.Marshal(p)
}

// publishDiscovery announces every entity (retained) and clears the
// configs of entities no longer in the list.
func (c *Client) publishDiscovery() {
	c.mu.Lock()
	ents := c.entities
	old := c.ents
	c.ents = map[string]bool{}
	for i := range ents {
		c.ents[c.discoveryTopic(&ents[i])] = true
	}
	var gone []string
	for t := range old {
		if !c.ents[t] {
			gone = append(gone, t)
		}
	}
	c.mu.Unlock()
	sort.Strings(gone)
	for _, t := range gone {
		c.mc.Publish(t, 1, true, []byte{})
	}
	for i := range ents {
		b, err := c.discoveryPayload(&ents[i])
		if err != nil {
			c.log.Warn("mqtt: discovery config", zap.String("entity", ents[i].ObjectID), zap.Error(err))
			continue
		}
		t := c.discoveryTopic(&ents[i])
		if tok := c.mc.Publish(t, 1, true, b); !tok.WaitTimeout(controlTimeout) || tok.Error() != nil {
			c.log.Warn("mqtt: publishing discovery config", zap.String("topic", t), zap.Error(tokenErr(tok)))
			return
		}
	}
	c.log.Debug("mqtt: discovery published", zap.Int("entities", len(ents)), zap.Int("removed", len(gone)))
}

// SetEntities replaces the announced Home Assistant entities (after a
// reload): new and changed ones are announced, removed ones deleted.
func (c *Client) SetEntities(ents []Entity) error {
	if err := checkEntities(ents); err != nil {
		return err
	}
	c.mu.Lock()
	c.entities = slices.Clone(ents)
	c.mu.Unlock()
	if c.cfg.Discovery.Enabled && c.Connected() {
		c.publishDiscovery()
	}
	return nil
}
