package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// WriteResponseV1 writes the function output payload to c per payload format 1.0. On error
// it writes nothing and returns an error wrapping ErrMalformedResponse.
//
// The output must be a JSON object with a "statusCode" key (exact case); unlike payload
// 2.0 nothing is inferred, so any other output is malformed.
//
//   - statusCode: a JSON integer from 200 to 599, as WriteResponse requires.
//   - headers: an object of values, each a string, number or boolean (written as its JSON
//     text), as WriteResponse takes them.
//   - multiValueHeaders: an object of arrays of such values. A null array counts as empty
//     (a Go function makes one from a nil slice); any other non-array is malformed.
//   - A header in both is sent with every multiValueHeaders value, in order, then the
//     headers value unless it is already one of them. Names are compared without regard to
//     case, and every value of a name is its own header line: "Set-Cookie" values become
//     separate Set-Cookie headers.
//   - body: a string; with isBase64Encoded true it is standard base64 and decoded (invalid
//     base64 is malformed).
//   - cookies and unknown keys are ignored; null means absent.
//   - Without a content-type header no Content-Type is sent, as in WriteResponse.
//
// Header names and values are validated, and the framing and gateway headers are dropped,
// exactly as WriteResponse does; a name the function sets replaces the value already on c's
// response, except Set-Cookie, whose values are added. Names are applied in sorted order.
func WriteResponseV1(c *fiber.Ctx, payload []byte) error {
	r, err := parseFunctionResponseV1(payload)
	if err != nil {
		return err
	}
	writeFunctionResponseV1(c, r)
	return nil
}

// writeFunctionResponseV1 writes a parsed payload 1.0 response to c.
func writeFunctionResponseV1(c *fiber.Ctx, r *functionResponse) {
	c.Status(r.status)
	h := &c.Response().Header
	for i, hv := range r.headers {
		first := i == 0 || !strings.EqualFold(r.headers[i-1].name, hv.name)
		if first && !strings.EqualFold(hv.name, fiber.HeaderSetCookie) {
			h.Del(hv.name)
		}
		h.Add(hv.name, hv.value)
	}
	if r.contentType == "" {
		// fasthttp would otherwise send "text/plain; charset=utf-8".
		h.SetNoDefaultContentType(true)
	}
	c.Response().SetBodyRaw(r.body)
}

// parseFunctionResponseV1 validates a payload format 1.0 function response. The headers of
// the result are grouped by name (compared without case), names in sorted order.
func parseFunctionResponseV1(payload []byte) (*functionResponse, error) {
	bad := func(format string, args ...any) (*functionResponse, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
	}
	text := bytes.TrimSpace(payload)
	if len(text) == 0 || text[0] != '{' {
		return bad("output is not a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(text, &obj); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	raw, ok := obj["statusCode"]
	if !ok {
		return bad("output has no statusCode")
	}
	r := &functionResponse{}
	if err := json.Unmarshal(raw, &r.status); err != nil || r.status < 200 || r.status > 599 {
		return bad("statusCode %s is not an integer from 200 to 599", raw)
	}

	var single map[string]json.RawMessage
	if err := json.Unmarshal(nullIfMissing(obj["headers"]), &single); err != nil {
		return bad("headers is not an object")
	}
	var multi map[string][]json.RawMessage
	if err := json.Unmarshal(nullIfMissing(obj["multiValueHeaders"]), &multi); err != nil {
		return bad("multiValueHeaders is not an object of arrays")
	}
	// Gather the values of each name: multiValueHeaders first, then headers.
	type group struct {
		name   string // the first spelling met: multiValueHeaders, then headers, each sorted
		values []string
	}
	groups := make(map[string]*group)
	add := func(name string, raw json.RawMessage, onlyNew bool) error {
		if !validHeaderName(name) {
			return fmt.Errorf("invalid header name %q", name)
		}
		value, ok := responseHeaderValue(raw)
		if !ok {
			return fmt.Errorf("header %q: value %s is not a string, number or boolean", name, raw)
		}
		if !validHeaderValue(value) {
			return fmt.Errorf("header %q: value holds a control character", name)
		}
		lower := strings.ToLower(name)
		g := groups[lower]
		if g == nil {
			g = &group{name: name}
			groups[lower] = g
		}
		for _, v := range g.values {
			if onlyNew && v == value {
				return nil
			}
		}
		g.values = append(g.values, value)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(multi)) {
		for _, v := range multi[name] {
			if err := add(name, v, false); err != nil {
				return bad("multiValueHeaders: %v", err)
			}
		}
		if len(multi[name]) == 0 && !validHeaderName(name) {
			return bad("multiValueHeaders: invalid header name %q", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(single)) {
		if err := add(name, single[name], true); err != nil {
			return bad("headers: %v", err)
		}
	}
	for _, lower := range slices.Sorted(maps.Keys(groups)) {
		if droppedResponseHeader(lower) {
			continue
		}
		g := groups[lower]
		for _, v := range g.values {
			r.headers = append(r.headers, responseHeader{name: g.name, value: v})
		}
		if lower == "content-type" {
			r.contentType = g.values[len(g.values)-1]
		}
	}

	if msg := r.readBody(obj); msg != "" {
		return bad("%s", msg)
	}
	return r, nil
}
