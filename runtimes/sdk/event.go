package sdk

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
)

// Inside a WebAssembly guest, reflection-based encoding/json costs tens of microseconds per event, far
// more than the rest of an invocation. So the events and responses of HTTP and WebSocket APIs — almost
// every invocation — are decoded and encoded by hand here: events.APIGatewayV2HTTPRequest and
// events.APIGatewayWebsocketProxyRequest, events.APIGatewayV2HTTPResponse and
// events.APIGatewayProxyResponse (or pointers to these two). Every other type goes through encoding/json.
//
// The decoder gives exactly what json.Unmarshal gives into a zero value, or gives up and leaves the
// event to json.Unmarshal: it handles the shapes the gateway sends (string escapes and invalid UTF-8
// included) and falls back on anything unusual — a member name that is not one of the type's but
// matches one case-insensitively (encoding/json would take it), a member given twice, an integer in a
// form json.Unmarshal rejects, a type mismatch, a syntax error, deep nesting. Sub-objects that are
// rarely present (authorizer, authentication, identity.clientCert) are handed to json.Unmarshal alone.
// The encoder writes the bytes json.Marshal writes.

// decodeEvent decodes raw into v, a pointer to the handler's event.
func decodeEvent(raw []byte, v any) error {
	switch e := v.(type) {
	case *events.APIGatewayV2HTTPRequest:
		d := newEventDecoder(raw)
		if d.v2Request(e) && d.end() {
			return nil
		}
		*e = events.APIGatewayV2HTTPRequest{}
	case *events.APIGatewayWebsocketProxyRequest:
		d := newEventDecoder(raw)
		if d.wsRequest(e) && d.end() {
			return nil
		}
		*e = events.APIGatewayWebsocketProxyRequest{}
	}
	return json.Unmarshal(raw, v)
}

// encodeResponse encodes a handler's response.
func encodeResponse(v any) ([]byte, error) {
	switch r := v.(type) {
	case events.APIGatewayV2HTTPResponse:
		return appendV2Response(nil, &r), nil
	case *events.APIGatewayV2HTTPResponse:
		if r == nil {
			return []byte("null"), nil
		}
		return appendV2Response(nil, r), nil
	case events.APIGatewayProxyResponse:
		return appendProxyResponse(nil, &r), nil
	case *events.APIGatewayProxyResponse:
		if r == nil {
			return []byte("null"), nil
		}
		return appendProxyResponse(nil, r), nil
	}
	return json.Marshal(v)
}

// Decoding.

// eventDecoder reads one JSON document. Its methods report false on anything the fast path does not
// handle, after which the caller discards what was decoded and uses encoding/json.
type eventDecoder struct {
	b []byte
	i int
	// s is a copy of b when b is small: strings without escapes are then slices of it, one allocation
	// for them all. (They keep all of s alive, hence the bound.)
	s string
}

// newEventDecoder returns a decoder of b.
func newEventDecoder(b []byte) eventDecoder {
	d := eventDecoder{b: b}
	if len(b) <= maxSharedEvent {
		d.s = string(b)
	}
	return d
}

// maxSharedEvent is the size of the largest event whose strings share one allocation.
const maxSharedEvent = 64 << 10

// maxSkipDepth bounds the nesting of skipped values; deeper ones (encoding/json rejects nesting beyond
// 10000) are left to encoding/json.
const maxSkipDepth = 1000

// Member names of the decoded structs, for spotting names encoding/json would match case-insensitively.
const (
	v2RequestNames  = "version routeKey rawPath rawQueryString cookies headers queryStringParameters pathParameters requestContext stageVariables body isBase64Encoded"
	v2ContextNames  = "routeKey accountId stage requestId authorizer apiId domainName domainPrefix time timeEpoch http authentication"
	v2HTTPNames     = "method path protocol sourceIp userAgent"
	wsRequestNames  = "resource path httpMethod headers multiValueHeaders queryStringParameters multiValueQueryStringParameters pathParameters stageVariables requestContext body isBase64Encoded"
	wsContextNames  = "accountId resourceId stage requestId identity resourcePath authorizer httpMethod apiId connectedAt connectionId domainName error eventType extendedRequestId integrationLatency messageDirection messageId requestTime requestTimeEpoch routeKey status disconnectStatusCode disconnectReason"
	wsIdentityNames = "cognitoIdentityPoolId accountId cognitoIdentityId caller apiKey apiKeyId accessKey sourceIp cognitoAuthenticationType cognitoAuthenticationProvider userArn userAgent user clientCert"
)

func (d *eventDecoder) v2Request(e *events.APIGatewayV2HTTPRequest) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "version":
			ok = once(&seen, 0) && d.str(&e.Version)
		case "routeKey":
			ok = once(&seen, 1) && d.str(&e.RouteKey)
		case "rawPath":
			ok = once(&seen, 2) && d.str(&e.RawPath)
		case "rawQueryString":
			ok = once(&seen, 3) && d.str(&e.RawQueryString)
		case "cookies":
			ok = once(&seen, 4) && d.strSlice(&e.Cookies)
		case "headers":
			ok = once(&seen, 5) && d.strMap(&e.Headers)
		case "queryStringParameters":
			ok = once(&seen, 6) && d.strMap(&e.QueryStringParameters)
		case "pathParameters":
			ok = once(&seen, 7) && d.strMap(&e.PathParameters)
		case "requestContext":
			ok = once(&seen, 8) && (d.null() || d.v2Context(&e.RequestContext))
		case "stageVariables":
			ok = once(&seen, 9) && d.strMap(&e.StageVariables)
		case "body":
			ok = once(&seen, 10) && d.str(&e.Body)
		case "isBase64Encoded":
			ok = once(&seen, 11) && d.bool(&e.IsBase64Encoded)
		default:
			ok = d.unknown(k, v2RequestNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

func (d *eventDecoder) v2Context(c *events.APIGatewayV2HTTPRequestContext) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "routeKey":
			ok = once(&seen, 0) && d.str(&c.RouteKey)
		case "accountId":
			ok = once(&seen, 1) && d.str(&c.AccountID)
		case "stage":
			ok = once(&seen, 2) && d.str(&c.Stage)
		case "requestId":
			ok = once(&seen, 3) && d.str(&c.RequestID)
		case "authorizer":
			ok = once(&seen, 4) && d.delegate(&c.Authorizer)
		case "apiId":
			ok = once(&seen, 5) && d.str(&c.APIID)
		case "domainName":
			ok = once(&seen, 6) && d.str(&c.DomainName)
		case "domainPrefix":
			ok = once(&seen, 7) && d.str(&c.DomainPrefix)
		case "time":
			ok = once(&seen, 8) && d.str(&c.Time)
		case "timeEpoch":
			ok = once(&seen, 9) && d.int64(&c.TimeEpoch)
		case "http":
			ok = once(&seen, 10) && (d.null() || d.v2HTTP(&c.HTTP))
		case "authentication":
			ok = once(&seen, 11) && d.delegate(&c.Authentication)
		default:
			ok = d.unknown(k, v2ContextNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

func (d *eventDecoder) v2HTTP(h *events.APIGatewayV2HTTPRequestContextHTTPDescription) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "method":
			ok = once(&seen, 0) && d.str(&h.Method)
		case "path":
			ok = once(&seen, 1) && d.str(&h.Path)
		case "protocol":
			ok = once(&seen, 2) && d.str(&h.Protocol)
		case "sourceIp":
			ok = once(&seen, 3) && d.str(&h.SourceIP)
		case "userAgent":
			ok = once(&seen, 4) && d.str(&h.UserAgent)
		default:
			ok = d.unknown(k, v2HTTPNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

func (d *eventDecoder) wsRequest(e *events.APIGatewayWebsocketProxyRequest) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "resource":
			ok = once(&seen, 0) && d.str(&e.Resource)
		case "path":
			ok = once(&seen, 1) && d.str(&e.Path)
		case "httpMethod":
			ok = once(&seen, 2) && d.str(&e.HTTPMethod)
		case "headers":
			ok = once(&seen, 3) && d.strMap(&e.Headers)
		case "multiValueHeaders":
			ok = once(&seen, 4) && d.strSliceMap(&e.MultiValueHeaders)
		case "queryStringParameters":
			ok = once(&seen, 5) && d.strMap(&e.QueryStringParameters)
		case "multiValueQueryStringParameters":
			ok = once(&seen, 6) && d.strSliceMap(&e.MultiValueQueryStringParameters)
		case "pathParameters":
			ok = once(&seen, 7) && d.strMap(&e.PathParameters)
		case "stageVariables":
			ok = once(&seen, 8) && d.strMap(&e.StageVariables)
		case "requestContext":
			ok = once(&seen, 9) && (d.null() || d.wsContext(&e.RequestContext))
		case "body":
			ok = once(&seen, 10) && d.str(&e.Body)
		case "isBase64Encoded":
			ok = once(&seen, 11) && d.bool(&e.IsBase64Encoded)
		default:
			ok = d.unknown(k, wsRequestNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

func (d *eventDecoder) wsContext(c *events.APIGatewayWebsocketProxyRequestContext) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "accountId":
			ok = once(&seen, 0) && d.str(&c.AccountID)
		case "resourceId":
			ok = once(&seen, 1) && d.str(&c.ResourceID)
		case "stage":
			ok = once(&seen, 2) && d.str(&c.Stage)
		case "requestId":
			ok = once(&seen, 3) && d.str(&c.RequestID)
		case "identity":
			ok = once(&seen, 4) && (d.null() || d.wsIdentity(&c.Identity))
		case "resourcePath":
			ok = once(&seen, 5) && d.str(&c.ResourcePath)
		case "authorizer":
			ok = once(&seen, 6) && d.delegate(&c.Authorizer)
		case "httpMethod":
			ok = once(&seen, 7) && d.str(&c.HTTPMethod)
		case "apiId":
			ok = once(&seen, 8) && d.str(&c.APIID)
		case "connectedAt":
			ok = once(&seen, 9) && d.int64(&c.ConnectedAt)
		case "connectionId":
			ok = once(&seen, 10) && d.str(&c.ConnectionID)
		case "domainName":
			ok = once(&seen, 11) && d.str(&c.DomainName)
		case "error":
			ok = once(&seen, 12) && d.str(&c.Error)
		case "eventType":
			ok = once(&seen, 13) && d.str(&c.EventType)
		case "extendedRequestId":
			ok = once(&seen, 14) && d.str(&c.ExtendedRequestID)
		case "integrationLatency":
			ok = once(&seen, 15) && d.str(&c.IntegrationLatency)
		case "messageDirection":
			ok = once(&seen, 16) && d.str(&c.MessageDirection)
		case "messageId":
			// An interface{}: a string is the common case, anything else goes to encoding/json.
			ok = once(&seen, 17)
			if ok && d.peek() == '"' {
				var s string
				if s, ok = d.string(); ok {
					c.MessageID = s
				}
			} else if ok {
				ok = d.delegate(&c.MessageID)
			}
		case "requestTime":
			ok = once(&seen, 18) && d.str(&c.RequestTime)
		case "requestTimeEpoch":
			ok = once(&seen, 19) && d.int64(&c.RequestTimeEpoch)
		case "routeKey":
			ok = once(&seen, 20) && d.str(&c.RouteKey)
		case "status":
			ok = once(&seen, 21) && d.str(&c.Status)
		case "disconnectStatusCode":
			ok = once(&seen, 22) && d.int64(&c.DisconnectStatusCode)
		case "disconnectReason":
			ok = once(&seen, 23)
			if ok && d.peek() == '"' {
				var s string
				if s, ok = d.string(); ok {
					c.DisconnectReason = &s
				}
			} else if ok {
				ok = d.null() // null leaves the pointer nil
				c.DisconnectReason = nil
			}
		default:
			ok = d.unknown(k, wsContextNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

func (d *eventDecoder) wsIdentity(id *events.APIGatewayRequestIdentity) bool {
	more, ok := d.open()
	var seen uint32
	for ok && more {
		var k []byte
		if k, ok = d.key(); !ok {
			break
		}
		switch string(k) {
		case "cognitoIdentityPoolId":
			ok = once(&seen, 0) && d.str(&id.CognitoIdentityPoolID)
		case "accountId":
			ok = once(&seen, 1) && d.str(&id.AccountID)
		case "cognitoIdentityId":
			ok = once(&seen, 2) && d.str(&id.CognitoIdentityID)
		case "caller":
			ok = once(&seen, 3) && d.str(&id.Caller)
		case "apiKey":
			ok = once(&seen, 4) && d.str(&id.APIKey)
		case "apiKeyId":
			ok = once(&seen, 5) && d.str(&id.APIKeyID)
		case "accessKey":
			ok = once(&seen, 6) && d.str(&id.AccessKey)
		case "sourceIp":
			ok = once(&seen, 7) && d.str(&id.SourceIP)
		case "cognitoAuthenticationType":
			ok = once(&seen, 8) && d.str(&id.CognitoAuthenticationType)
		case "cognitoAuthenticationProvider":
			ok = once(&seen, 9) && d.str(&id.CognitoAuthenticationProvider)
		case "userArn":
			ok = once(&seen, 10) && d.str(&id.UserArn)
		case "userAgent":
			ok = once(&seen, 11) && d.str(&id.UserAgent)
		case "user":
			ok = once(&seen, 12) && d.str(&id.User)
		case "clientCert":
			ok = once(&seen, 13) && d.delegate(&id.ClientCert)
		default:
			ok = d.unknown(k, wsIdentityNames)
		}
		if ok {
			more, ok = d.next()
		}
	}
	return ok
}

// once marks member n of an object as seen, reporting false if it already was: encoding/json decodes a
// repeated member into the value decoded so far, which the fast path does not attempt.
func once(seen *uint32, n uint) bool {
	if *seen&(1<<n) != 0 {
		return false
	}
	*seen |= 1 << n
	return true
}

// unknown skips the value of a member whose name is not one of names (space-separated). A name encoding/
// json would match to one of them case-insensitively, or one that is not ASCII (Unicode case folding),
// is not handled.
func (d *eventDecoder) unknown(k []byte, names string) bool {
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for names != "" {
		n := len(names)
		for j := 0; j < len(names); j++ {
			if names[j] == ' ' {
				n = j
				break
			}
		}
		if asciiEqualFold(names[:n], k) {
			return false
		}
		if n == len(names) {
			break
		}
		names = names[n+1:]
	}
	return d.skip(0)
}

func asciiEqualFold(a string, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// delegate decodes the next value into v with encoding/json: for rarely present sub-objects. v must
// point to a zero value (the struct field is seen once).
func (d *eventDecoder) delegate(v any) bool {
	d.space()
	start := d.i
	if !d.skip(0) {
		return false
	}
	return json.Unmarshal(d.b[start:d.i], v) == nil
}

// end reports whether only white space follows.
func (d *eventDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

func (d *eventDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, or 0 at the end.
func (d *eventDecoder) peek() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// open consumes the '{' that starts an object, reporting whether it has members.
func (d *eventDecoder) open() (more, ok bool) {
	if d.peek() != '{' {
		return false, false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return false, true
	}
	return true, true
}

// key reads a member's name and the ':' after it. The name may alias the input.
func (d *eventDecoder) key() ([]byte, bool) {
	d.space()
	k, _, _, ok := d.unquote()
	if !ok || d.peek() != ':' {
		return nil, false
	}
	d.i++
	return k, true
}

// next consumes the ',' or '}' after a member, reporting whether another member follows.
func (d *eventDecoder) next() (more, ok bool) {
	switch d.peek() {
	case ',':
		d.i++
		return true, true
	case '}':
		d.i++
		return false, true
	}
	return false, false
}

// literal consumes lit if it comes next.
func (d *eventDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// null consumes a null if one comes next.
func (d *eventDecoder) null() bool {
	return d.peek() == 'n' && d.literal("null")
}

// str decodes a string; null leaves *p as it is.
func (d *eventDecoder) str(p *string) bool {
	switch d.peek() {
	case '"':
		s, ok := d.string()
		*p = s
		return ok
	case 'n':
		return d.literal("null")
	}
	return false
}

// bool decodes a boolean; null leaves *p as it is.
func (d *eventDecoder) bool(p *bool) bool {
	switch d.peek() {
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return false
}

// int64 decodes an integer written without fraction or exponent, as encoding/json accepts into an
// int64; null leaves *p as it is.
func (d *eventDecoder) int64(p *int64) bool {
	c := d.peek()
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return false
	}
	start := d.i
	if !d.number() {
		return false
	}
	digits := d.b[start:d.i]
	if digits[0] == '-' {
		digits = digits[1:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false // a fraction or exponent: encoding/json rejects it
		}
	}
	if len(digits) > 18 { // may overflow
		n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
		*p = n
		return err == nil
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if d.b[start] == '-' {
		n = -n
	}
	*p = n
	return true
}

// number consumes a number, checking its syntax.
func (d *eventDecoder) number() bool {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	d.i = i
	return true
}

// strMap decodes an object of strings. Like encoding/json it adds to a map already there, stores ""
// for a null value and makes the map nil for null.
func (d *eventDecoder) strMap(p *map[string]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	more, ok := d.open()
	if !ok {
		return false
	}
	m := *p
	if m == nil {
		m = make(map[string]string)
		*p = m
	}
	for more {
		k, ok := d.mapKey()
		if !ok {
			return false
		}
		var v string
		if !d.str(&v) {
			return false
		}
		m[k] = v
		if more, ok = d.next(); !ok {
			return false
		}
	}
	return true
}

// strSliceMap decodes an object of string arrays, as strMap does.
func (d *eventDecoder) strSliceMap(p *map[string][]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	more, ok := d.open()
	if !ok {
		return false
	}
	m := *p
	if m == nil {
		m = make(map[string][]string)
		*p = m
	}
	for more {
		k, ok := d.mapKey()
		if !ok {
			return false
		}
		var v []string
		if !d.strSlice(&v) {
			return false
		}
		m[k] = v
		if more, ok = d.next(); !ok {
			return false
		}
	}
	return true
}

// strSlice decodes an array of strings into *p, which must be nil: null elements become "", an empty
// array a non-nil empty slice, null a nil slice.
func (d *eventDecoder) strSlice(p *[]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	s := []string{}
	if d.peek() == ']' {
		d.i++
		*p = s
		return true
	}
	for {
		var v string
		if !d.str(&v) {
			return false
		}
		s = append(s, v)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*p = s
			return true
		default:
			return false
		}
	}
}

// mapKey reads a map key and the ':' after it.
func (d *eventDecoder) mapKey() (string, bool) {
	d.space()
	k, ok := d.string()
	if !ok || d.peek() != ':' {
		return "", false
	}
	d.i++
	return k, true
}

// string reads a string value.
func (d *eventDecoder) string() (string, bool) {
	s, start, fresh, ok := d.unquote()
	switch {
	case !ok:
		return "", false
	case fresh:
		// s was allocated for this string alone and is never written again.
		return unsafe.String(unsafe.SliceData(s), len(s)), true
	case d.s != "":
		return d.s[start : start+len(s)], true
	}
	return string(s), true
}

// unquote reads the string starting at d.b[d.i] and returns its contents as encoding/json decodes them.
// Unless fresh, the result is d.b[start:start+len(s)].
func (d *eventDecoder) unquote() (s []byte, start int, fresh, ok bool) {
	b := d.b
	if d.i >= len(b) || b[d.i] != '"' {
		return nil, 0, false, false
	}
	start = d.i + 1
	for j := start; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			d.i = j + 1
			return b[start:j], start, false, true
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			s, ok := d.unquoteSlow(start, j)
			return s, 0, true, ok
		}
	}
	return nil, 0, false, false
}

// unquoteSlow decodes a string with escapes or non-ASCII bytes from b[j], b[start:j] being plain. As
// encoding/json does, it turns invalid UTF-8 and unpaired surrogates into U+FFFD.
func (d *eventDecoder) unquoteSlow(start, j int) ([]byte, bool) {
	b := d.b
	out := make([]byte, j-start, j-start+64)
	copy(out, b[start:j])
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return out, true
		case c == '\\':
			if j+1 >= len(b) {
				return nil, false
			}
			switch e := b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b, j+2)
				if r < 0 {
					return nil, false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
						if r2 := hex4(b, j+2); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								j += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, false
			}
			j += 2
		case c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			out = append(out, c)
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, b[j:j+size]...)
			}
			j += size
		}
	}
	return nil, false
}

// hex4 parses the four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skip consumes one value of any kind, checking its syntax; depth is its nesting below the caller.
func (d *eventDecoder) skip(depth int) bool {
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			if d.peek() != '"' || !d.skipString() || d.peek() != ':' {
				return false
			}
			d.i++
			if !d.skip(depth + 1) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.number()
	}
	return false
}

// skipString consumes a string, checking its syntax (encoding/json does not check its UTF-8).
func (d *eventDecoder) skipString() bool {
	b := d.b
	for j := d.i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c == '\\':
			if j+1 >= len(b) {
				return false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if hex4(b, j+2) < 0 {
					return false
				}
				j += 5
			default:
				return false
			}
		case c < ' ':
			return false
		}
	}
	return false
}

// Encoding.

func appendV2Response(dst []byte, r *events.APIGatewayV2HTTPResponse) []byte {
	n := 16
	for _, c := range r.Cookies {
		n += len(c) + 3
	}
	dst = appendResponseStart(dst, n, r.StatusCode, r.Headers, r.MultiValueHeaders, r.Body, r.IsBase64Encoded)
	dst = append(dst, `,"cookies":`...)
	dst = appendStringSlice(dst, r.Cookies)
	return append(dst, '}')
}

func appendProxyResponse(dst []byte, r *events.APIGatewayProxyResponse) []byte {
	dst = appendResponseStart(dst, 0, r.StatusCode, r.Headers, r.MultiValueHeaders, r.Body, r.IsBase64Encoded)
	return append(dst, '}')
}

// appendResponseStart writes the members both response types share, in their order, leaving the object
// open. A nil dst is allocated with room for them and extra bytes.
func appendResponseStart(dst []byte, extra, status int, headers map[string]string, multi map[string][]string, body string, b64 bool) []byte {
	if dst == nil {
		n := 96 + extra + len(body)
		for k, v := range headers {
			n += len(k) + len(v) + 6
		}
		for k, v := range multi {
			n += len(k) + 6
			for _, s := range v {
				n += len(s) + 3
			}
		}
		dst = make([]byte, 0, n+n/8)
	}
	dst = append(dst, `{"statusCode":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"headers":`...)
	if headers == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '{')
		for i, k := range sortedKeys(headers) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, headers[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"multiValueHeaders":`...)
	if multi == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '{')
		for i, k := range sortedKeys(multi) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendStringSlice(dst, multi[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"body":`...)
	dst = appendString(dst, body)
	if b64 {
		dst = append(dst, `,"isBase64Encoded":true`...)
	}
	return dst
}

// sortedKeys returns m's keys in the order encoding/json writes them.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStringSlice(dst []byte, s []string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, v)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// htmlSafe reports whether json.Marshal writes the ASCII byte c as it is: not a control character,
// quote, backslash, or one of <, >, &.
func htmlSafe(c byte) bool {
	const low, high uint64 = 0xafffffbb00000000, 0xffffffffefffffff // bit c, and bit c-64
	if c < 64 {
		return low>>c&1 != 0
	}
	return high>>(c-64)&1 != 0
}

// appendString writes s as json.Marshal does: HTML-sensitive characters, U+2028 and U+2029 escaped,
// invalid UTF-8 as \ufffd.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe(c) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
