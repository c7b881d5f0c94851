package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// ErrMalformedResponse means the function's output is not valid JSON or has an
// invalid shape. The gateway should answer it like API Gateway: 500
// {"message":"Internal Server Error"}.
var ErrMalformedResponse = errors.New("malformed function response")

// WriteResponse writes the function output payload to c per payload format 2.0. On
// error it writes nothing and returns an error wrapping ErrMalformedResponse.
//
// A JSON object with a "statusCode" key (exact case) is a structured response:
//
//   - statusCode: a JSON integer from 200 to 599 (an informational 1xx would leave the client waiting for a final response, so it is refused).
//   - headers: an object; string values are used as they are (a multi-value header
//     is one comma-joined string). Number and boolean values are written as their
//     JSON text (our choice; a Go function cannot produce them, a JavaScript one
//     easily does). Other values, invalid header names, and values holding control
//     characters other than tab (CR and LF would split the response) are malformed.
//   - cookies: an array of strings, each sent as its own Set-Cookie header.
//   - body: a string; with isBase64Encoded true it is standard base64 and decoded
//     (invalid base64 is malformed).
//   - multiValueHeaders and unknown keys are ignored; null means absent.
//   - Without a content-type header no Content-Type is sent (API Gateway's
//     behaviour is not documented; we do not invent one).
//
// Any other valid JSON is an inferred response: status 200, content-type
// application/json, body the JSON text (surrounding whitespace trimmed), except that
// a JSON string becomes its decoded text.
//
// # Notes
//
// Headers that would break HTTP framing or that the server manages are dropped:
// content-length, transfer-encoding, connection, keep-alive, proxy-connection, te,
// trailer, upgrade, plus apigw-requestid, which belongs to the gateway. Headers
// already on c's response (for example set by the gateway before the call) stay
// unless the function sets the same name. Header names are applied in sorted order
// so that repeated names differing in case resolve the same way every time.
func WriteResponse(c *fiber.Ctx, payload []byte) error {
	r, err := parseFunctionResponse(payload)
	if err != nil {
		return err
	}
	c.Status(r.status)
	for _, h := range r.headers {
		c.Set(h.name, h.value)
	}
	for _, ck := range r.cookies {
		c.Response().Header.Add(fiber.HeaderSetCookie, ck)
	}
	if r.contentType == "" {
		// fasthttp would otherwise send "text/plain; charset=utf-8".
		c.Response().Header.SetNoDefaultContentType(true)
	}
	c.Response().SetBodyRaw(r.body)
	return nil
}

// functionResponse is a validated function response, ready to write.
type functionResponse struct {
	status      int
	headers     []responseHeader
	cookies     []string
	contentType string
	body        []byte
	// base64 is the body as the function sent it when it was base64 (payload 1.0), for REST
	// APIs, which send it on undecoded unless it is binary to them.
	base64 string
}

type responseHeader struct{ name, value string }

// parseFunctionResponse validates a payload format 2.0 function response: the
// hand-written parser takes the common outputs, encoding/json the rest.
func parseFunctionResponse(payload []byte) (*functionResponse, error) {
	if r, ok := parseFunctionResponseFast(bytes.TrimSpace(payload)); ok {
		return r, nil
	}
	return parseFunctionResponseJSON(payload)
}

// parseFunctionResponseJSON is parseFunctionResponse by encoding/json, for every
// output; parseFunctionResponseFast must give what it gives.
func parseFunctionResponseJSON(payload []byte) (*functionResponse, error) {
	text := bytes.TrimSpace(payload)
	if len(text) == 0 {
		return nil, fmt.Errorf("%w: empty output", ErrMalformedResponse)
	}
	switch text[0] {
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(text, &obj); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		if _, ok := obj["statusCode"]; ok {
			return parseStructuredResponse(obj)
		}
	case '"':
		var s string
		if err := json.Unmarshal(text, &s); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		return inferredResponse([]byte(s)), nil
	default:
		if !json.Valid(text) {
			return nil, fmt.Errorf("%w: output is not valid JSON", ErrMalformedResponse)
		}
	}
	return inferredResponse(append([]byte(nil), text...)), nil
}

// inferredResponse is the response API Gateway makes of output without statusCode.
func inferredResponse(body []byte) *functionResponse {
	return &functionResponse{
		status:      fiber.StatusOK,
		headers:     []responseHeader{{name: fiber.HeaderContentType, value: fiber.MIMEApplicationJSON}},
		contentType: fiber.MIMEApplicationJSON,
		body:        body,
	}
}

// parseStructuredResponse validates an output object that has a statusCode key.
func parseStructuredResponse(obj map[string]json.RawMessage) (*functionResponse, error) {
	bad := func(format string, args ...any) (*functionResponse, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformedResponse, fmt.Sprintf(format, args...))
	}
	r := &functionResponse{}
	if err := json.Unmarshal(obj["statusCode"], &r.status); err != nil || r.status < 200 || r.status > 599 {
		return bad("statusCode %s is not an integer from 200 to 599", obj["statusCode"])
	}

	var headers map[string]json.RawMessage
	if err := json.Unmarshal(nullIfMissing(obj["headers"]), &headers); err != nil {
		return bad("headers is not an object")
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !validHeaderName(name) {
			return bad("invalid header name %q", name)
		}
		value, ok := responseHeaderValue(headers[name])
		if !ok {
			return bad("header %q: value %s is not a string, number or boolean", name, headers[name])
		}
		if !validHeaderValue(value) {
			return bad("header %q: value holds a control character", name)
		}
		lower := strings.ToLower(name)
		if droppedResponseHeader(lower) {
			continue
		}
		if lower == "content-type" {
			r.contentType = value
		}
		r.headers = append(r.headers, responseHeader{name: name, value: value})
	}

	if err := json.Unmarshal(nullIfMissing(obj["cookies"]), &r.cookies); err != nil {
		return bad("cookies is not an array of strings")
	}
	for _, ck := range r.cookies {
		if !validHeaderValue(ck) {
			return bad("cookie %q holds a control character", ck)
		}
	}

	if msg := r.readBody(obj); msg != "" {
		return bad("%s", msg)
	}
	return r, nil
}

// readBody sets r's body from a response's body and isBase64Encoded (both formats have them), or
// says what is wrong with them.
func (r *functionResponse) readBody(obj map[string]json.RawMessage) string {
	var body string
	if err := json.Unmarshal(nullIfMissing(obj["body"]), &body); err != nil {
		return "body is not a string"
	}
	var isBase64 bool
	if err := json.Unmarshal(nullIfMissing(obj["isBase64Encoded"]), &isBase64); err != nil {
		return "isBase64Encoded is not a boolean"
	}
	if !isBase64 {
		r.body = []byte(body)
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return fmt.Sprintf("body is not valid base64: %v", err)
	}
	r.body, r.base64 = b, body
	return ""
}

// nullIfMissing returns raw, or JSON null when raw is nil, so that unmarshalling a
// missing key leaves the target at its zero value.
func nullIfMissing(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

// responseHeaderValue converts a header value from a function response: a string
// as is, a number or boolean as its JSON text.
func responseHeaderValue(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case c == 't', c == 'f', c == '-', '0' <= c && c <= '9':
		return string(raw), true // json.Unmarshal already validated the literal
	}
	return "", false
}

// droppedResponseHeader reports whether a function may not set the header with the
// lower-case name.
func droppedResponseHeader(lower string) bool {
	switch lower {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
		"te", "trailer", "upgrade", "apigw-requestid":
		return true
	}
	return false
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value holds no control character other than tab.
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
