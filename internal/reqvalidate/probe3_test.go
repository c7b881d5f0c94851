package reqvalidate

import (
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func unmarshalForProbe(s string) (any, error) { return jsonschema.UnmarshalJSON(strings.NewReader(s)) }
