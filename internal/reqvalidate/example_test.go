package reqvalidate_test

import (
	"encoding/json"
	"fmt"
	"net/http"

	"gatehouse.dev/gatehouse/internal/reqvalidate"
)

func ExampleModels_ValidateBody() {
	models, err := reqvalidate.Compile(map[string]json.RawMessage{
		"Pet": json.RawMessage(`{
			"type": "object",
			"required": ["name"],
			"properties": {
				"name": {"type": "string"},
				"price": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
				"owner": {"$ref": "https://apigateway.amazonaws.com/restapis/abc123/models/Owner"}
			}
		}`),
		"Owner": json.RawMessage(`{"type": "object", "required": ["email"]}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(models.ValidateBody("Pet", []byte(`{"name": "Rex", "price": 12.5, "owner": {"email": "ann@example.com"}}`)))
	fmt.Println(models.ValidateBody("Pet", []byte(`{"price": 0, "owner": {}}`)))
	fmt.Println(models.ValidateBody("Pet", []byte(`name=Rex`)))
	// Output:
	// <nil>
	// [/: missing property 'name'; /owner: missing property 'email'; /price: exclusiveMinimum: got 0, want > 0]
	// [not JSON: invalid character 'a' in literal null (expecting 'u') (at byte 2)]
}

func ExampleMissingParameters() {
	required := map[string]bool{"querystring.limit": true, "header.x-id": true, "querystring.page": false}
	r, _ := http.NewRequest("GET", "https://api.example.com/pets?page=2", nil)
	fmt.Println(reqvalidate.MissingParameters(required, func(location, name string) bool {
		switch location {
		case reqvalidate.LocationQueryString:
			return r.URL.Query().Get(name) != ""
		case reqvalidate.LocationHeader:
			return r.Header.Get(name) != ""
		}
		return false
	}))
	// Output:
	// Missing required request parameters: [limit, x-id]
}
