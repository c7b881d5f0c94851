package reqvalidate

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestProbe(t *testing.T) {
	models := map[string]json.RawMessage{
		"Pet": json.RawMessage(`{"type":"object","required":["name","price"],"additionalProperties":false,
		 "properties":{"id":{"type":"integer","minimum":1,"maximum":9007199254740992},"name":{"type":"string","pattern":"^[A-Za-z ]+$"},
		 "price":{"type":"number","minimum":0,"exclusiveMinimum":true},"kind":{"enum":["dog","cat"]},
		 "owner":{"$ref":"https://apigateway.amazonaws.com/restapis/abc123/models/Owner"},
		 "tags":{"type":"array","items":{"type":"string","minLength":1}},
		 "alt":{"anyOf":[{"type":"integer"},{"type":"null"}]}}}`),
		"Owner": json.RawMessage(`{"type":"object","required":["email"],"properties":{"email":{"type":"string","format":"email"}}}`),
		"Order": json.RawMessage(`{"id":"https://example.com/order.json","type":"object","properties":{"line":{"$ref":"#/definitions/line"}, "pet":{"$ref":"https://apigateway.amazonaws.com/restapis/q/models/Pet"}},"definitions":{"line":{"type":"integer"}}}`),
		"Owner2": json.RawMessage(`{"$ref":"https://apigateway.amazonaws.com/restapis/zzz/models/Order"}`),
	}
	m, err := Compile(models)
	fmt.Println("compile:", err)
	if err != nil {
		return
	}
	for _, b := range []string{
		`{"name":"Rex","price":1}`,
		`{"name":"Rex","price":0}`,
		`{"name":"R3x","price":"1","zz":1,"aa":2,"kind":"cow","id":1.0,"tags":["",1,"x"],"owner":{"email":"nope"},"alt":"s"}`,
		`{"name":"Rex","price":1,"id":9007199254740993}`,
		`{"name":"Rex","price":1,"id":1.5}`,
		`[]`, ``, `{`, `{"a":1} {}`, `nul`,
	} {
		fmt.Printf("%s => %v\n", b, m.ValidateBody("Pet", []byte(b)))
	}
	fmt.Println(m.ValidateBody("Order", []byte(`{"line":"x","pet":{}}`)))
	fmt.Println(m.ValidateBody("Owner2", []byte(`{"line":"x","pet":{}}`)))
	for _, bad := range []string{
		`{"type":"strin"}`, `{"$ref":"http://127.0.0.1:1/x.json"}`, `{"$ref":"file:///etc/passwd"}`, `{"$ref":"#/definitions/nope"}`,
		`{"pattern":"(?!x)"}`, `{"$schema":"http://json-schema.org/draft-03/schema#"}`, `{"$ref":"Nope"}`, `true`, `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"a":{"const":1}}}`,
		`{"properties":{"a":{"$ref":"#/properties/a"}}}`, `{"$ref":"#"}`,
	} {
		_, err := Compile(map[string]json.RawMessage{"X": json.RawMessage(bad)})
		fmt.Printf("%s => %v\n", bad, err)
	}
}
