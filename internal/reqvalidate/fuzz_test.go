package reqvalidate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzValidateBody validates random bodies against fixed models: it must never panic, and every
// answer must be nil or a *BodyError whose text is one line of at most MaxErrorText bytes, the
// same each time.
func FuzzValidateBody(f *testing.F) {
	m := compile(f, map[string]string{
		"Pet":   petModel,
		"Order": orderModel,
		"Node":  `{"type": "object", "properties": {"v": {"type": "integer", "multipleOf": 3}, "kids": {"type": "array", "uniqueItems": true, "items": {"$ref": "#"}}}}`,
		"Mixed": `{"$schema": "https://json-schema.org/draft/2020-12/schema", "anyOf": [{"type": "string", "format": "date-time"}, {"type": "array", "prefixItems": [{"const": 1}], "contains": {"type": "null"}, "minContains": 2}, {"type": "object", "propertyNames": {"maxLength": 3}, "dependentRequired": {"a": ["b"]}, "unevaluatedProperties": false}]}`,
	})
	seeds := []string{
		``, `{}`, `[]`, `null`, `"x"`, `1`,
		`{"name": "Rex", "price": 10}`,
		`{"price": -1, "kind": "cow", "tags": [1, 2, 2], "owner": {"email": 3}, "zz": 0}`,
		`{"pets": [{"name": "Rex", "price": 5}, {}], "ship_to": {"zip": "1"}}`,
		`{"v": 9, "kids": [{"v": 1}, {"v": 1}, {"kids": [{"v": 1e400}]}]}`,
		`{"v": 1e999999999}`, `{"v": 1e-999999999}`, `[1e401]`, `{"id": 123456789012345678901234567890}`,
		`{"a": 1, "abcd": 2}`, `[1, null, null]`, `"2024-02-30T25:00:00Z"`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
		`{"name": "line\nbreak", "price": "\u0000"}`, "{\"\xff\": 1}",
		`{"a":1} {}`, `{"a":`, `{'a': 1}`,
	}
	for _, s := range seeds {
		for _, model := range []string{"Pet", "Order", "Node", "Mixed"} {
			f.Add(model, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, model string, body []byte) {
		if !m.Has(model) {
			model = "Pet"
		}
		err := m.ValidateBody(model, body)
		if err == nil {
			return
		}
		var be *BodyError
		if !errors.As(err, &be) {
			t.Fatalf("ValidateBody(%s, %q) = %v (%T), want a *BodyError", model, body, err, err)
		}
		text := err.Error()
		if len(text) > MaxErrorText || strings.ContainsAny(text, "\r\n") || !strings.HasPrefix(text, "[") || !strings.HasSuffix(text, "]") {
			t.Fatalf("error text of %d bytes: %q", len(text), text)
		}
		if again := m.ValidateBody(model, body).Error(); again != text {
			t.Fatalf("second validation differs:\n%s\n%s", text, again)
		}
	})
}

// FuzzCompile compiles random models: Compile must never panic, and a model it accepts must
// validate bodies without failing.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		petModel, orderModel, `{}`, `true`, `{"$ref": "#"}`, `{"$ref": "Pet"}`, `{"$ref": "http://127.0.0.1:1/x"}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "if": {"type": "string"}, "then": {"minLength": 2}, "else": {"$ref": "#/definitions/n"}, "definitions": {"n": {"not": {"$ref": "#"}}}}`,
		`{"$schema": "https://json-schema.org/draft/2020-12/schema", "$dynamicAnchor": "a", "items": {"$dynamicRef": "#a"}}`,
		`{"$schema": "https://json-schema.org/draft/2019-09/schema", "$recursiveAnchor": true, "items": {"$recursiveRef": "#"}}`,
		`{"patternProperties": {"^a": {"$ref": "#/patternProperties/%5Ea"}}}`, `{"enum": [1e400]}`, `{"dependencies": {"a": {"$ref": "#"}}}`,
	} {
		f.Add(s)
	}
	bodies := [][]byte{[]byte(`{}`), []byte(`[]`), []byte(`{"a": [1, "x", null]}`), []byte(`"s"`), []byte(`{"name": "Rex", "price": 1}`)}
	f.Fuzz(func(t *testing.T, doc string) {
		m, err := Compile(map[string]json.RawMessage{"M": json.RawMessage(doc), "Pet": json.RawMessage(petModel)})
		if err != nil {
			if errors.Is(err, ErrValidator) {
				t.Fatalf("Compile(%q) = %v", doc, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("Compile(%q): error on more than one line: %q", doc, err)
			}
			return
		}
		for _, b := range bodies {
			err := m.ValidateBody("M", b)
			var be *BodyError
			if err != nil && !errors.As(err, &be) {
				t.Fatalf("Compile(%q), ValidateBody(%s) = %v", doc, b, err)
			}
		}
	})
}
