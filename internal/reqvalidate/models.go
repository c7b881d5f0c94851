package reqvalidate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MaxBody is the largest body [Models.ValidateBody] reads, in bytes: API Gateway's 10 MB payload
// limit. The gateway refuses larger bodies before validation, with 413.
const MaxBody = 10 << 20

// MaxDepth is how deeply arrays and objects may nest in a body [Models.ValidateBody] validates.
// The validator's work on a body that fails deep down grows with the square of the depth.
const MaxDepth = 64

// Errors of [Models.ValidateBody] other than a [*BodyError].
var (
	// ErrUnknownModel is a model name the API has no model for.
	ErrUnknownModel = errors.New("no such model")
	// ErrBodyTooLarge is a body of more than MaxBody bytes.
	ErrBodyTooLarge = errors.New("body too large to validate")
	// ErrValidator is a failure of the validator itself.
	ErrValidator = errors.New("the body validator failed")
)

// modelURLPrefix is where Gatehouse places an API's models for the validator, in API Gateway's
// model URL form with a fixed API id. References to another model by its URL reach the model
// whatever id they carry.
const modelURLPrefix = "https://" + modelHost + "/restapis/gatehouse/models/"

const modelHost = "apigateway.amazonaws.com"

// Models are an API's models, compiled. A Models is immutable and safe for concurrent use.
type Models struct {
	schemas map[string]*jsonschema.Schema
}

// ModelError is a model that does not compile.
type ModelError struct {
	// Model is the model's name.
	Model string
	// Err is what is wrong with it.
	Err error
}

// Error returns "models.NAME: " followed by what is wrong.
func (e *ModelError) Error() string { return "models." + clip(oneLine(e.Model)) + ": " + e.Err.Error() }

// Unwrap returns e.Err.
func (e *ModelError) Unwrap() error { return e.Err }

// Compile compiles an API's models, by name: each a JSON Schema document. A document without
// "$schema" is read as draft 4; one whose "$schema" names draft 4, 6, 7, 2019-09 or 2020-12
// (http://json-schema.org/draft-04/schema#, https://json-schema.org/draft/2020-12/schema, …) is
// read as that draft.
//
// A model may refer to its own parts ("#/definitions/Owner") and to another model of models by API
// Gateway's model URL, "https://apigateway.amazonaws.com/restapis/{id}/models/{name}", whatever
// the id; a relative reference such as "Owner" resolves to the same URL form and reaches the model
// Owner too. Compile reads no file and makes no network request.
//
// A model name is letters, digits, '_', '-' and '.', starting with a letter or digit (API Gateway
// allows only letters and digits; the stack file checks that rule itself).
//
// # Errors
//
// The error is a [*ModelError] for the first model, in name order, that does not compile: it is
// not JSON, not a schema of its draft, names an unknown "$schema", has a pattern Go's regexp
// package cannot compile (patterns are RE2, not ECMA 262: no lookaround or backreferences), has a
// number past [MaxNumberText] or [MaxExponent], refers to something other than itself or another
// model of models, or loops: a $ref (or allOf, anyOf, …) that leads back to where it started
// without moving to another value, which the validator would fail every body on. The error
// wraps [ErrValidator] if the validator itself failed.
func Compile(models map[string]json.RawMessage) (_ *Models, err error) {
	defer func() {
		// As in ValidateBody: a fault of the validator fails this definition, not the caller.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrValidator, r)
		}
	}()
	names := slices.Sorted(maps.Keys(models))
	docs := make(map[string]any, len(models))
	for _, name := range names {
		if !validModelName(name) {
			return nil, &ModelError{name, errors.New("not a model name: want letters, digits, '_', '-' and '.', starting with a letter or digit")}
		}
		raw := models[name]
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, &ModelError{name, errors.New("the schema is empty")}
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, &ModelError{name, fmt.Errorf("the schema is not JSON: %v", err)}
		}
		if err := checkDraft(doc); err != nil {
			return nil, &ModelError{name, err}
		}
		if bad := badNumbers(doc); len(bad) > 0 {
			return nil, &ModelError{name, fmt.Errorf("%s at %s", numberRange, pointer(bad[0]))}
		}
		docs[name] = doc
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	// The loader replaces the default one, which reads file: URLs.
	c.UseLoader(modelLoader(docs))
	m := &Models{schemas: make(map[string]*jsonschema.Schema, len(names))}
	for _, name := range names {
		sch, err := c.Compile(modelURLPrefix + name)
		if err != nil {
			return nil, &ModelError{name, compileError(err)}
		}
		m.schemas[name] = sch
	}
	seen, state := map[*jsonschema.Schema]bool{}, map[*jsonschema.Schema]uint8{}
	for _, name := range names {
		if loc := findLoop(m.schemas[name], seen, state); loc != "" {
			return nil, &ModelError{name, fmt.Errorf("%s leads back to itself (by $ref, allOf, anyOf, oneOf, not or if) without moving to another value: it would fail every body that reaches it",
				schemaLocation(loc))}
		}
	}
	return m, nil
}

// Has reports whether the API has a model named name.
func (m *Models) Has(name string) bool {
	if m == nil {
		return false
	}
	_, ok := m.schemas[name]
	return ok
}

// ValidateBody validates a request body against the model named name: nil when the body matches.
// It is safe for concurrent use.
//
// Before the model, ValidateBody checks what the validator cannot take: arrays and objects nested
// deeper than [MaxDepth], and numbers longer than [MaxNumberText] characters or with an exponent
// past [MaxExponent]. A body with them is invalid.
//
// # Errors
//
//   - [*BodyError] when the body does not match the model, is not JSON (an empty body is not
//     JSON either) or is past the limits above: API Gateway answers such a request with 400
//     {"message": "Invalid request body"}.
//   - [ErrUnknownModel] when the API has no such model.
//   - [ErrBodyTooLarge] when the body is larger than [MaxBody]; it is not parsed.
//   - [ErrValidator] when the validator failed: a fault of Gatehouse's, not of the request.
func (m *Models) ValidateBody(name string, body []byte) (err error) {
	if !m.Has(name) {
		return fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	if len(body) > MaxBody {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBodyTooLarge, len(body), MaxBody)
	}
	if tooDeep(body, MaxDepth) {
		return &BodyError{Problems: []string{fmt.Sprintf("/: nested deeper than %d arrays and objects", MaxDepth)}}
	}
	// UnmarshalJSON keeps numbers as json.Number, so that 2^63 or 0.1 are compared exactly,
	// and refuses anything after the JSON value but white space.
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return &BodyError{Problems: []string{notJSON(err)}}
	}
	if bad := badNumbers(v); len(bad) > 0 {
		ps, more := numberProblems(bad)
		return &BodyError{Problems: ps, More: more}
	}
	defer func() {
		// The validator is not Gatehouse's code and reads what clients send: a panic in it
		// fails this request, not the gateway.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrValidator, r)
		}
	}()
	err = m.schemas[name].Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("%w: %v", ErrValidator, oneLine(err.Error()))
	}
	ps, more := problems(verr)
	return &BodyError{Problems: ps, More: more}
}

// tooDeep reports whether arrays and objects nest deeper than limit in b, read as JSON. It does
// not check that b is JSON.
func tooDeep(b []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > limit {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// notJSON describes why a body is not JSON.
func notJSON(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not JSON: %v (at byte %d)", err, syn.Offset)
	case err.Error() == "EOF":
		return "not JSON: empty body"
	case err.Error() == "unexpected EOF":
		return "not JSON: unexpected end of body"
	}
	return "not JSON: " + oneLine(err.Error())
}

// validModelName reports whether name can name a model.
func validModelName(name string) bool {
	if name == "" || !isAlnum(name[0]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// drafts are the "$schema" values Compile honours, without scheme and fragment.
var drafts = []string{
	"json-schema.org/draft-04/schema",
	"json-schema.org/draft-06/schema",
	"json-schema.org/draft-07/schema",
	"json-schema.org/draft/2019-09/schema",
	"json-schema.org/draft/2020-12/schema",
}

// checkDraft refuses a document whose "$schema" names no draft Compile knows: the validator would
// otherwise try to load it as a meta-schema.
func checkDraft(doc any) error {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	s, ok := obj["$schema"].(string)
	if !ok {
		return nil // absent, or not a string: the meta-schema check reports the latter
	}
	u := strings.TrimSuffix(s, "#")
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		u = rest
	} else {
		u = strings.TrimPrefix(u, "https://")
	}
	if slices.Contains(drafts, u) {
		return nil
	}
	return fmt.Errorf("unsupported $schema %q: want draft 4 (the default), 6, 7, 2019-09 or 2020-12, such as %q", clip(s), "http://json-schema.org/draft-04/schema#")
}

// modelLoader serves the validator the documents it asks for: an API's models by their URL, and
// nothing else.
type modelLoader map[string]any

// Load returns the model that u names, or a *refError.
func (l modelLoader) Load(u string) (any, error) {
	name, ok := modelName(u)
	if !ok {
		return nil, &refError{url: u}
	}
	doc, ok := l[name]
	if !ok {
		return nil, &refError{url: u, model: name}
	}
	return doc, nil
}

// modelName returns the model name of an API Gateway model URL,
// https://apigateway.amazonaws.com/restapis/{id}/models/{name}.
func modelName(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, modelHost) || u.User != nil || u.RawQuery != "" {
		return "", false
	}
	parts := strings.Split(u.Path, "/")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "restapis" || parts[2] == "" || parts[3] != "models" || parts[4] == "" {
		return "", false
	}
	return parts[4], true
}

// refError is a reference Compile does not follow.
type refError struct {
	url   string
	model string // the model name of an API Gateway model URL; "" for any other URL
}

func (e *refError) Error() string {
	if e.model != "" {
		return fmt.Sprintf("refers to the model %q, which this API does not have", clip(e.model))
	}
	return fmt.Sprintf("refers to %q, which is not allowed: a model may refer only to its own parts (\"#/definitions/NAME\") and to the API's other models (%q)",
		clip(e.url), "https://"+modelHost+"/restapis/{id}/models/NAME")
}

// compileError rewrites an error of the validator's compiler for a person: on one line, with
// models named "models.NAME" rather than by their URL.
func compileError(err error) error {
	// LoadURLError has no Unwrap method.
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		var ref *refError
		if errors.As(load.Err, &ref) {
			return ref
		}
	}
	var missing *jsonschema.JSONPointerNotFoundError
	if errors.As(err, &missing) {
		return fmt.Errorf("refers to %s, which does not exist", schemaLocation(missing.URL))
	}
	var meta *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &meta) && errors.As(meta.Err, &verr) {
		where := ""
		if _, frag, ok := strings.Cut(meta.URL, "#"); ok && frag != "" {
			where = " at " + frag
		}
		return fmt.Errorf("not a valid schema%s: %s", where, formatProblems(problems(verr)))
	}
	return errors.New(oneLine(modelURLs.ReplaceAllLiteralString(err.Error(), "models.")))
}

// schemaLocation names a location in a model for a person: "models.Pet#/definitions/owner" for
// a URL of the validator, "models.Pet" for the whole model.
func schemaLocation(u string) string {
	return clip(oneLine(strings.TrimSuffix(modelURLs.ReplaceAllLiteralString(u, "models."), "#")))
}

// modelURLs matches the start of API Gateway model URLs, whatever their API id.
var modelURLs = regexp.MustCompile(`https://` + regexp.QuoteMeta(modelHost) + `/restapis/[^/#?"'\s]+/models/`)
