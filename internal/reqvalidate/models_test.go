package reqvalidate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// petModel is a draft 4 model (no "$schema"), as API Gateway reads models.
const petModel = `{
  "title": "Pet",
  "type": "object",
  "required": ["name", "price"],
  "additionalProperties": false,
  "properties": {
    "id": {"type": "integer", "minimum": 1},
    "name": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[A-Za-z][A-Za-z ]*$"},
    "kind": {"type": "string", "enum": ["dog", "cat", "fish"]},
    "price": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 10000},
    "vaccinated": {"type": "boolean"},
    "owner": {
      "type": "object",
      "required": ["email"],
      "additionalProperties": false,
      "properties": {
        "email": {"type": "string", "format": "email"},
        "phone": {"type": ["string", "null"]}
      }
    },
    "tags": {"type": "array", "maxItems": 3, "uniqueItems": true, "items": {"type": "string", "minLength": 1}}
  }
}`

// orderModel refers to Pet by API Gateway's model URL (another API id than Gatehouse's: the id is
// ignored) and to a part of itself.
const orderModel = `{
  "type": "object",
  "required": ["pets", "ship_to"],
  "properties": {
    "pets": {"type": "array", "minItems": 1, "items": {"$ref": "https://apigateway.amazonaws.com/restapis/a1b2c3d4e5/models/Pet"}},
    "ship_to": {"$ref": "#/definitions/address"},
    "bill_to": {"$ref": "#/definitions/address"}
  },
  "definitions": {
    "address": {
      "type": "object",
      "required": ["street", "zip"],
      "properties": {"street": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}
    }
  }
}`

func compile(t testing.TB, models map[string]string) *Models {
	t.Helper()
	raw := make(map[string]json.RawMessage, len(models))
	for name, doc := range models {
		raw[name] = json.RawMessage(doc)
	}
	m, err := Compile(raw)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m
}

func compileErr(models map[string]string) error {
	raw := make(map[string]json.RawMessage, len(models))
	for name, doc := range models {
		raw[name] = json.RawMessage(doc)
	}
	_, err := Compile(raw)
	return err
}

// bodyCase is a body and the error text it must get: "" when valid.
type bodyCase struct {
	name, model, body, want string
}

func runBodyCases(t *testing.T, m *Models, cases []bodyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.ValidateBody(tc.model, []byte(tc.body))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ValidateBody(%s) = %v, want nil", tc.body, err)
				}
				return
			}
			var be *BodyError
			if !errors.As(err, &be) {
				t.Fatalf("ValidateBody(%s) = %v (%T), want a *BodyError", tc.body, err, err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("ValidateBody(%s)\n got: %s\nwant: %s", tc.body, got, tc.want)
			}
		})
	}
}

func TestValidateBodyPet(t *testing.T) {
	m := compile(t, map[string]string{"Pet": petModel})
	runBodyCases(t, m, []bodyCase{
		{"minimal", "Pet", `{"name": "Rex", "price": 10}`, ""},
		{"full", "Pet", `{"id": 7, "name": "Rex the Dog", "kind": "dog", "price": 0.01, "vaccinated": true,
			"owner": {"email": "ann@example.com", "phone": null}, "tags": ["good", "loud"]}`, ""},
		{"white space around", "Pet", " \n\t{\"name\": \"Rex\", \"price\": 10}\r\n ", ""},
		{"big integer id", "Pet", `{"id": 123456789012345678901234567890, "name": "Rex", "price": 1}`, ""},
		{"integer written with an exponent", "Pet", `{"id": 1e3, "name": "Rex", "price": 1}`, ""},

		{"missing required", "Pet", `{"kind": "dog"}`, `[/: missing properties 'name', 'price']`},
		{"additional properties sorted", "Pet", `{"name": "Rex", "price": 1, "zebra": 1, "age": 2, "color": "red"}`,
			`[/: additional properties 'age', 'color', 'zebra' not allowed]`},
		{"wrong type", "Pet", `{"name": "Rex", "price": "10"}`, `[/price: got string, want number]`},
		{"integer wanted", "Pet", `{"id": 1.5, "name": "Rex", "price": 1}`, `[/id: got number, want integer]`},
		{"minimum", "Pet", `{"id": 0, "name": "Rex", "price": 1}`, `[/id: minimum: got 0, want >= 1]`},
		{"exclusive minimum (draft 4 boolean)", "Pet", `{"name": "Rex", "price": 0}`, `[/price: exclusiveMinimum: got 0, want > 0]`},
		{"maximum", "Pet", `{"name": "Rex", "price": 10000.5}`, `[/price: maximum: got 10000.5, want <= 10000]`},
		{"enum", "Pet", `{"name": "Rex", "price": 1, "kind": "cow"}`, `[/kind: value must be one of 'dog', 'cat', 'fish']`},
		{"pattern", "Pet", `{"name": "R2D2", "price": 1}`, `[/name: 'R2D2' does not match pattern '^[A-Za-z][A-Za-z ]*$']`},
		{"min length", "Pet", `{"name": "", "price": 1}`,
			`[/name: '' does not match pattern '^[A-Za-z][A-Za-z ]*$'; /name: minLength: got 0 characters, want >= 1]`},
		{"max length", "Pet", `{"name": "Abcdefghijklmnopqrstuvwxyz", "price": 1}`, `[/name: maxLength: got 26 characters, want <= 20]`},
		{"boolean", "Pet", `{"name": "Rex", "price": 1, "vaccinated": "yes"}`, `[/vaccinated: got string, want boolean]`},
		{"nested required", "Pet", `{"name": "Rex", "price": 1, "owner": {}}`, `[/owner: missing property 'email']`},
		{"nested format", "Pet", `{"name": "Rex", "price": 1, "owner": {"email": "ann"}}`, `[/owner/email: 'ann' is not valid email: missing @]`},
		{"nested type list", "Pet", `{"name": "Rex", "price": 1, "owner": {"email": "a@b.c", "phone": 5}}`,
			`[/owner/phone: got number, want null or string]`},
		{"nested additional", "Pet", `{"name": "Rex", "price": 1, "owner": {"email": "a@b.c", "fax": "1"}}`,
			`[/owner: additional properties 'fax' not allowed]`},
		{"array items", "Pet", `{"name": "Rex", "price": 1, "tags": ["", 7]}`,
			`[/tags/0: minLength: got 0 characters, want >= 1; /tags/1: got number, want string]`},
		{"array max items", "Pet", `{"name": "Rex", "price": 1, "tags": ["a", "b", "c", "d"]}`, `[/tags: maxItems: got 4 items, want <= 3]`},
		{"array unique", "Pet", `{"name": "Rex", "price": 1, "tags": ["a", "b", "a"]}`, `[/tags: uniqueItems: items 0 and 2 are equal]`},
		{"not an object", "Pet", `["Rex"]`, `[/: got array, want object]`},
		{"null", "Pet", `null`, `[/: got null, want object]`},
		{"many problems, sorted", "Pet", `{"price": -1, "kind": "cow", "tags": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "owner": {"email": 3}, "zz": 0}`,
			`[/: additional properties 'zz' not allowed; /: missing property 'name'; /kind: value must be one of 'dog', 'cat', 'fish'; ` +
				`/owner/email: got number, want string; /price: exclusiveMinimum: got -1, want > 0; ` +
				`/tags: maxItems: got 11 items, want <= 3; /tags/0: got number, want string; /tags/1: got number, want string; ` +
				`/tags/2: got number, want string; /tags/3: got number, want string; /tags/4: got number, want string; ` +
				`/tags/5: got number, want string; /tags/6: got number, want string; /tags/7: got number, want string; ` +
				`/tags/8: got number, want string; /tags/9: got number, want string; /tags/10: got number, want string]`},
	})
}

func TestValidateBodyNotJSON(t *testing.T) {
	m := compile(t, map[string]string{"Pet": petModel})
	runBodyCases(t, m, []bodyCase{
		{"empty", "Pet", ``, `[not JSON: empty body]`},
		{"white space", "Pet", " \n ", `[not JSON: empty body]`},
		{"truncated", "Pet", `{"name": "Rex"`, `[not JSON: unexpected end of body]`},
		{"text", "Pet", `hello`, `[not JSON: invalid character 'h' looking for beginning of value (at byte 1)]`},
		{"single quotes", "Pet", `{'name': 'Rex'}`, `[not JSON: invalid character '\'' looking for beginning of object key string (at byte 2)]`},
		{"two values", "Pet", `{"name": "Rex", "price": 1} {}`, `[not JSON: invalid character after top-level value]`},
		{"trailing comma", "Pet", `{"name": "Rex", "price": 1,}`, `[not JSON: invalid character '}' looking for beginning of object key string (at byte 28)]`},
		{"form", "Pet", `name=Rex&price=1`, `[not JSON: invalid character 'a' in literal null (expecting 'u') (at byte 2)]`},
	})
}

// TestDraft4 checks that a model without "$schema" is read as draft 4, and that another named
// draft is honoured.
func TestDraft4(t *testing.T) {
	m := compile(t, map[string]string{
		// Draft 4: "const" does not exist, a $ref's siblings are ignored.
		"Four": `{
			"definitions": {"short": {"type": "string"}},
			"properties": {
				"c": {"const": 1},
				"r": {"$ref": "#/definitions/short", "maxLength": 2}
			}
		}`,
		"Seven": `{
			"$schema": "http://json-schema.org/draft-07/schema#",
			"properties": {
				"c": {"const": 1},
				"n": {"exclusiveMinimum": 0}
			}
		}`,
		"Latest": `{
			"$schema": "https://json-schema.org/draft/2020-12/schema",
			"$defs": {"short": {"type": "string"}},
			"properties": {"r": {"$ref": "#/$defs/short", "maxLength": 2}}
		}`,
		// Draft 4's "id" sets the base that references resolve against.
		"WithID": `{
			"id": "https://example.com/schemas/line.json",
			"type": "object",
			"properties": {
				"qty": {"$ref": "#/definitions/qty"},
				"sku": {"$ref": "https://example.com/schemas/line.json#/definitions/sku"}
			},
			"definitions": {
				"qty": {"type": "integer", "minimum": 1},
				"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"}
			}
		}`,
	})
	runBodyCases(t, m, []bodyCase{
		{"draft 4 has no const", "Four", `{"c": 2}`, ""},
		{"draft 4 ignores $ref siblings", "Four", `{"r": "abcdef"}`, ""},
		{"draft 4 $ref", "Four", `{"r": 5}`, `[/r: got number, want string]`},
		{"draft 7 const", "Seven", `{"c": 2}`, `[/c: value must be 1]`},
		{"draft 7 numeric exclusiveMinimum", "Seven", `{"n": 0}`, `[/n: exclusiveMinimum: got 0, want > 0]`},
		{"draft 7 numeric exclusiveMinimum passes", "Seven", `{"n": 0.5}`, ""},
		{"2020-12 applies $ref siblings", "Latest", `{"r": "abcdef"}`, `[/r: maxLength: got 6 characters, want <= 2]`},
		{"id valid", "WithID", `{"qty": 2, "sku": "ABC-12"}`, ""},
		{"id invalid", "WithID", `{"qty": 0, "sku": "abc"}`,
			`[/qty: minimum: got 0, want >= 1; /sku: 'abc' does not match pattern '^[A-Z]{3}-[0-9]+$']`},
	})

	// Draft 4's exclusiveMinimum is a boolean: a number there is not a draft 4 schema.
	err := compileErr(map[string]string{"Bad": `{"properties": {"n": {"minimum": 0, "exclusiveMinimum": 0}}}`})
	if want := `models.Bad: not a valid schema: [/properties/n/exclusiveMinimum: got number, want boolean]`; err == nil || err.Error() != want {
		t.Errorf("Compile = %v, want %s", err, want)
	}
}

func TestModelReferences(t *testing.T) {
	m := compile(t, map[string]string{
		"Pet":   petModel,
		"Order": orderModel,
		// A relative reference resolves to the URL form too.
		"Litter": `{"type": "array", "items": {"$ref": "Pet"}}`,
	})
	if !m.Has("Pet") || !m.Has("Order") || m.Has("Nope") {
		t.Errorf("Has: Pet %v, Order %v, Nope %v", m.Has("Pet"), m.Has("Order"), m.Has("Nope"))
	}
	runBodyCases(t, m, []bodyCase{
		{"valid", "Order", `{"pets": [{"name": "Rex", "price": 5}], "ship_to": {"street": "1 Main St", "zip": "12345"}}`, ""},
		{"through the other model", "Order", `{"pets": [{"name": "Rex", "price": 5}, {"price": "x"}], "ship_to": {"street": "1 Main St", "zip": "12345"}}`,
			`[/pets/1: missing property 'name'; /pets/1/price: got string, want number]`},
		{"through definitions", "Order", `{"pets": [{"name": "Rex", "price": 5}], "ship_to": {"zip": "1234"}, "bill_to": {"street": 1, "zip": "12345"}}`,
			`[/bill_to/street: got number, want string; /ship_to: missing property 'street'; /ship_to/zip: '1234' does not match pattern '^[0-9]{5}$']`},
		{"min items", "Order", `{"pets": [], "ship_to": {"street": "s", "zip": "12345"}}`, `[/pets: minItems: got 0 items, want >= 1]`},
		{"relative", "Litter", `[{"name": "Rex", "price": 5}, {"name": "Bo"}]`, `[/1: missing property 'price']`},
	})
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		models map[string]string
		want   string
	}{
		{"not JSON", map[string]string{"Pet": `{"type": "object"`}, `models.Pet: the schema is not JSON: unexpected EOF`},
		{"empty", map[string]string{"Pet": ``}, `models.Pet: the schema is empty`},
		{"bad name", map[string]string{"a/b": `{}`}, `models.a/b: not a model name: want letters, digits, '_', '-' and '.', starting with a letter or digit`},
		{"bad type", map[string]string{"Pet": `{"type": "strin"}`},
			`models.Pet: not a valid schema: [/type: got string, want array; /type: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string']`},
		{"boolean schema in draft 4", map[string]string{"Pet": `true`}, `models.Pet: not a valid schema: [/: got boolean, want object]`},
		{"ECMA regex", map[string]string{"Pet": `{"pattern": "^(?!admin)"}`},
			"models.Pet: not a valid schema: [/pattern: '^(?!admin)' is not valid regex: error parsing regexp: invalid or unsupported Perl syntax: `(?!`]"},
		{"unknown $schema", map[string]string{"Pet": `{"$schema": "http://json-schema.org/draft-03/schema#"}`},
			`models.Pet: unsupported $schema "http://json-schema.org/draft-03/schema#": want draft 4 (the default), 6, 7, 2019-09 or 2020-12, such as "http://json-schema.org/draft-04/schema#"`},
		{"remote $schema", map[string]string{"Pet": `{"$schema": "http://127.0.0.1:1/meta.json"}`},
			`models.Pet: unsupported $schema "http://127.0.0.1:1/meta.json": want draft 4 (the default), 6, 7, 2019-09 or 2020-12, such as "http://json-schema.org/draft-04/schema#"`},
		{"missing definition", map[string]string{"Pet": `{"properties": {"o": {"$ref": "#/definitions/owner"}}}`},
			`models.Pet: refers to models.Pet#/definitions/owner, which does not exist`},
		{"missing model", map[string]string{"Order": `{"items": {"$ref": "https://apigateway.amazonaws.com/restapis/x/models/Pet"}}`},
			`models.Order: refers to the model "Pet", which this API does not have`},
		{"file", map[string]string{"Pet": `{"$ref": "file:///etc/passwd"}`},
			`models.Pet: refers to "file:///etc/passwd", which is not allowed: a model may refer only to its own parts ("#/definitions/NAME") and to the API's other models ("https://apigateway.amazonaws.com/restapis/{id}/models/NAME")`},
		{"relative to a foreign id", map[string]string{"Pet": `{"id": "https://example.com/pet.json", "properties": {"o": {"$ref": "owner.json"}}}`},
			`models.Pet: refers to "https://example.com/owner.json", which is not allowed: a model may refer only to its own parts ("#/definitions/NAME") and to the API's other models ("https://apigateway.amazonaws.com/restapis/{id}/models/NAME")`},
		{"loop at the root", map[string]string{"Pet": `{"$ref": "#"}`},
			`models.Pet: models.Pet leads back to itself (by $ref, allOf, anyOf, oneOf, not or if) without moving to another value: it would fail every body that reaches it`},
		{"loop through another model", map[string]string{
			"A": `{"allOf": [{"$ref": "https://apigateway.amazonaws.com/restapis/x/models/B"}]}`,
			"B": `{"anyOf": [{"type": "string"}, {"$ref": "https://apigateway.amazonaws.com/restapis/x/models/A"}]}`},
			`models.A: models.B leads back to itself (by $ref, allOf, anyOf, oneOf, not or if) without moving to another value: it would fail every body that reaches it`},
		{"huge number", map[string]string{"Pet": `{"enum": [1, 1e999999]}`},
			`models.Pet: number out of range: want at most 100 characters and an exponent from -400 to 400 at /enum/1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := compileErr(tc.models)
			if err == nil {
				t.Fatalf("Compile succeeded, want %s", tc.want)
			}
			var me *ModelError
			if !errors.As(err, &me) {
				t.Errorf("error %v (%T) is not a *ModelError", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("Compile\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// TestRecursiveModels checks that a model may refer to itself through a value: a tree.
func TestRecursiveModels(t *testing.T) {
	m := compile(t, map[string]string{
		"Node": `{"type": "object", "required": ["v"], "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}}}`,
	})
	runBodyCases(t, m, []bodyCase{
		{"tree", "Node", `{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": 4}]}]}`, ""},
		{"deep problem", "Node", `{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": [{"v": "4"}]}]}`, `[/kids/1/kids/0/v: got string, want integer]`},
	})
}

// TestRemoteRefRefused checks that Compile refuses a remote reference at once, without trying
// the network: 127.0.0.1:1 refuses connections, and a server that counts its requests gets none.
func TestRemoteRefRefused(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, `{"type": "string"}`)
	}))
	defer srv.Close()

	for _, ref := range []string{"http://127.0.0.1:1/pet.json", srv.URL + "/pet.json", srv.URL + "/pet.json#/definitions/x"} {
		start := time.Now()
		err := compileErr(map[string]string{"Bad": `{"properties": {"p": {"$ref": "` + ref + `"}}}`})
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Compile took %v", elapsed)
		}
		ref, _, _ = strings.Cut(ref, "#")
		want := `models.Bad: refers to "` + ref + `", which is not allowed`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Compile = %v, want it to start with %s", err, want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestValidateBodyErrors(t *testing.T) {
	m := compile(t, map[string]string{"Pet": petModel})
	if err := m.ValidateBody("Nope", []byte(`{}`)); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("unknown model: %v, want ErrUnknownModel", err)
	}
	var none *Models
	if err := none.ValidateBody("Pet", []byte(`{}`)); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("nil Models: %v, want ErrUnknownModel", err)
	}
	// Too large: refused before parsing, so the bytes need not be JSON.
	big := make([]byte, MaxBody+1)
	if err := m.ValidateBody("Pet", big); !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("body of %d bytes: %v, want ErrBodyTooLarge", len(big), err)
	}
	empty, err := Compile(nil)
	if err != nil || empty.Has("Pet") {
		t.Errorf("Compile(nil) = %v, %v", empty, err)
	}
}

func TestLimits(t *testing.T) {
	m := compile(t, map[string]string{
		"Any":   `{}`,
		"Num":   `{"type": "array", "items": {"type": "integer"}}`,
		"Float": `{"properties": {"x": {"minimum": 0}}}`,
	})
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	runBodyCases(t, m, []bodyCase{
		{"depth at the limit", "Any", nest(MaxDepth), ""},
		{"too deep", "Any", nest(MaxDepth + 1), `[/: nested deeper than 64 arrays and objects]`},
		{"brackets in strings do not nest", "Any", `["` + strings.Repeat("[{", 100) + `\"]"]`, ""},
		{"exponent at the limit", "Num", `[1e400, -1E-400]`, `[/1: got number, want integer]`},
		{"exponent past the limit", "Num", `[1, 1e401, 2, 1e999999999, 1e-0000000401]`,
			`[/1: number out of range: want at most 100 characters and an exponent from -400 to 400; ` +
				`/3: number out of range: want at most 100 characters and an exponent from -400 to 400; ` +
				`/4: number out of range: want at most 100 characters and an exponent from -400 to 400]`},
		{"long number", "Num", `[` + strings.Repeat("9", 101) + `]`,
			`[/0: number out of range: want at most 100 characters and an exponent from -400 to 400]`},
		{"long number at the limit", "Num", `[` + strings.Repeat("9", 100) + `]`, ""},
		{"exact decimals", "Float", `{"x": -0.000000000000000000000000000001}`, `[/x: minimum: got -0.000000000000000000000000000001, want >= 0]`},
		{"tiny decimals", "Float", `{"x": -1e-40}`, `[/x: minimum: got -1e-40, want >= 0]`},
	})
}

// TestErrorText checks that the error is one line of at most MaxErrorText bytes, whatever the
// body holds.
func TestErrorText(t *testing.T) {
	m := compile(t, map[string]string{
		"Strings": `{"type": "array", "items": {"type": "string"}}`,
		"Pattern": `{"type": "object", "additionalProperties": {"type": "string", "pattern": "^a+$"}}`,
	})
	t.Run("many problems", func(t *testing.T) {
		body := "[" + strings.TrimSuffix(strings.Repeat("1,", 1000), ",") + "]"
		err := m.ValidateBody("Strings", []byte(body))
		var be *BodyError
		if !errors.As(err, &be) {
			t.Fatalf("ValidateBody = %v", err)
		}
		if len(be.Problems) != MaxProblems || be.More != 1000-MaxProblems {
			t.Errorf("%d problems and %d more, want %d and %d", len(be.Problems), be.More, MaxProblems, 1000-MaxProblems)
		}
		text := err.Error()
		wantStart := "[/0: got number, want string; /1: got number, want string; "
		if len(text) > MaxErrorText || !strings.HasPrefix(text, wantStart) || !strings.HasSuffix(text, "; /32: got number, want string; ... 967 more]") {
			t.Errorf("error text of %d bytes: %s", len(text), text)
		}
	})
	t.Run("long and awkward values", func(t *testing.T) {
		long := strings.Repeat("b", 5000)
		body := `{"` + long + `": "` + long + `", "line\nbreak\u2028": "x\r\ny", "tab\there": "\u0000", "` + "bad\xff" + `": "é"}`
		err := m.ValidateBody("Pattern", []byte(body))
		var be *BodyError
		if !errors.As(err, &be) {
			t.Fatalf("ValidateBody = %v", err)
		}
		for _, p := range be.Problems {
			if len(p) > maxProblemText {
				t.Errorf("problem of %d bytes: %.80s…", len(p), p)
			}
		}
		text := err.Error()
		if len(text) > MaxErrorText || strings.ContainsAny(text, "\r\n\t\x00\u2028") {
			t.Errorf("error text of %d bytes, not one clean line: %q", len(text), text)
		}
		// The JSON decoder reads the byte that is not UTF-8 as U+FFFD.
		want := "[/bad\ufffd" + `: 'é' does not match pattern '^a+$'; /` + strings.Repeat("b", 252) + `...; ` +
			`/line\u000abreak\u2028: 'x\r\ny' does not match pattern '^a+$'; /tab\u0009here: '\x00' does not match pattern '^a+$']`
		if text != want {
			t.Errorf("error text\n got: %s\nwant: %s", text, want)
		}
	})
}

func TestFormatProblems(t *testing.T) {
	p := func(n int, c string) string { return strings.Repeat(c, n) }
	tests := []struct {
		name string
		ps   []string
		more int
		want string
	}{
		{"none", nil, 0, "[]"},
		{"one", []string{"a"}, 0, "[a]"},
		{"two", []string{"a", "b"}, 0, "[a; b]"},
		{"more only", nil, 3, "[... 3 more]"},
		{"and more", []string{"a"}, 3, "[a; ... 3 more]"},
		// 5 × 250 bytes is past 1024: the fifth does not fit.
		{"cut", []string{p(250, "a"), p(250, "b"), p(250, "c"), p(250, "d"), p(250, "e")}, 0,
			"[" + p(250, "a") + "; " + p(250, "b") + "; " + p(250, "c") + "; " + p(250, "d") + "; ... 1 more]"},
		{"cut with more", []string{p(250, "a"), p(250, "b"), p(250, "c"), p(250, "d"), p(250, "e")}, 10,
			"[" + p(250, "a") + "; " + p(250, "b") + "; " + p(250, "c") + "; " + p(250, "d") + "; ... 11 more]"},
		// The last one fits exactly: 1 + 3×250 + 3×2 + 266 + 1 = 1024.
		{"last fits exactly", []string{p(250, "a"), p(250, "b"), p(250, "c"), p(266, "d")}, 0,
			"[" + p(250, "a") + "; " + p(250, "b") + "; " + p(250, "c") + "; " + p(266, "d") + "]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := formatProblems(tc.ps, tc.more)
			if got != tc.want {
				t.Errorf("formatProblems\n got: %s\nwant: %s", got, tc.want)
			}
			if len(got) > MaxErrorText {
				t.Errorf("%d bytes", len(got))
			}
		})
	}
}

// TestDeterministic validates bodies whose problems the validator finds in map order, many
// times: the text must not change.
func TestDeterministic(t *testing.T) {
	m := compile(t, map[string]string{"Pet": petModel})
	body := []byte(`{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "price": "x", "name": 5, "kind": 1, "id": "x", "tags": "x", "owner": 1}`)
	first := m.ValidateBody("Pet", body).Error()
	want := `[/: additional properties 'a', 'b', 'c', 'd', 'e', 'f' not allowed; /id: got string, want integer; ` +
		`/kind: got number, want string; /name: got number, want string; /owner: got number, want object; ` +
		`/price: got string, want number; /tags: got string, want array]`
	if first != want {
		t.Fatalf("ValidateBody\n got: %s\nwant: %s", first, want)
	}
	for range 200 {
		if got := m.ValidateBody("Pet", body).Error(); got != first {
			t.Fatalf("ValidateBody changed:\n%s\n%s", first, got)
		}
	}
}

func TestCompareLocations(t *testing.T) {
	locs := [][]string{{"a"}, {}, {"10"}, {"2"}, {"a", "1"}, {"1a"}, {"02"}, {"b"}, {"a", "0"}}
	slices.SortFunc(locs, compareLocations)
	if got, want := fmt.Sprint(locs), "[[] [2] [02] [10] [1a] [a] [a 0] [a 1] [b]]"; got != want {
		t.Errorf("sorted: %s, want %s", got, want)
	}
}

// TestConcurrentValidation validates from many goroutines at once; run with -race.
func TestConcurrentValidation(t *testing.T) {
	m := compile(t, map[string]string{"Pet": petModel, "Order": orderModel})
	bodies := []struct {
		model, body string
		valid       bool
	}{
		{"Pet", `{"name": "Rex", "price": 10}`, true},
		{"Pet", `{"name": 1, "price": "x", "q": 1}`, false},
		{"Order", `{"pets": [{"name": "Rex", "price": 5}], "ship_to": {"street": "s", "zip": "12345"}}`, true},
		{"Order", `{"pets": [{}], "ship_to": {}}`, false},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				b := bodies[(g+i)%len(bodies)]
				if err := m.ValidateBody(b.model, []byte(b.body)); (err == nil) != b.valid {
					t.Errorf("ValidateBody(%s, %s) = %v", b.model, b.body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkValidateBody(b *testing.B) {
	m := compile(b, map[string]string{"Pet": petModel, "Order": orderModel})
	valid := []byte(`{"pets": [{"id": 7, "name": "Rex", "kind": "dog", "price": 12.5, "owner": {"email": "a@b.c"}, "tags": ["a", "b"]}], "ship_to": {"street": "1 Main St", "zip": "12345"}}`)
	invalid := []byte(`{"pets": [{"id": 0, "name": 5, "kind": "cow", "price": -1}], "ship_to": {"zip": "1"}}`)
	b.Run("valid", func(b *testing.B) {
		for b.Loop() {
			if err := m.ValidateBody("Order", valid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("invalid", func(b *testing.B) {
		for b.Loop() {
			if err := m.ValidateBody("Order", invalid); err == nil {
				b.Fatal("valid")
			}
		}
	})
}
