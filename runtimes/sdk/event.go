package sdk

import (
	"encoding/json"
	"unicode/utf8"

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

// appendResponse appends a handler's response, encoded, to dst.
func appendResponse(dst []byte, v any) ([]byte, error) {
	switch r := v.(type) {
	case events.APIGatewayV2HTTPResponse:
		return appendV2Response(dst, &r), nil
	case *events.APIGatewayV2HTTPResponse:
		if r == nil {
			return append(dst, "null"...), nil
		}
		return appendV2Response(dst, r), nil
	case events.APIGatewayProxyResponse:
		return appendProxyResponse(dst, &r), nil
	case *events.APIGatewayProxyResponse:
		if r == nil {
			return append(dst, "null"...), nil
		}
		return appendProxyResponse(dst, r), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
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
