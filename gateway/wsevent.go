package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// WebSocket event types, the values of requestContext.eventType.
const (
	WSEventConnect    = "CONNECT"
	WSEventMessage    = "MESSAGE"
	WSEventDisconnect = "DISCONNECT"
)

// WSEventContext is what the gateway knows when it builds a WebSocket event.
type WSEventContext struct {
	EventType                          string // WSEventConnect, WSEventMessage or WSEventDisconnect
	RouteKey                           string // "$connect", "$disconnect", "$default" or a custom key
	APIID, Stage, DomainName           string
	ConnectionID, RequestID, MessageID string    // MessageID only for MESSAGE
	ConnectedAt, Time                  time.Time // zero Time means time.Now(); zero ConnectedAt means Time
	SourceIP, UserAgent                string
	StageVariables                     map[string]string
	Authorizer                         map[string]any      // nil (or empty) when no authorizer ran
	Headers                            map[string][]string // CONNECT (and the few DISCONNECT has): original-case names
	Query                              map[string][]string // CONNECT
	Body                               []byte              // MESSAGE
	Binary                             bool                // MESSAGE: a binary frame
	StatusCode                         int                 // DISCONNECT: the close code, e.g. 1001
	Reason                             string              // DISCONNECT: the close reason, often ""
}

// BuildWSEvent returns the Lambda event of a WebSocket API (JSON bytes), shaped as
// API Gateway sends it and decodable into aws-lambda-go's
// events.APIGatewayWebsocketProxyRequest. c's maps are only read.
//
// # Fields
//
//   - requestContext always has routeKey, eventType, extendedRequestId and
//     requestId (both RequestID), requestTime (CLF in UTC, "25/Nov/2026:10:05:00
//     +0000"), requestTimeEpoch and connectedAt (Unix ms), messageDirection "IN",
//     stage, identity{sourceIp, userAgent}, domainName, connectionId and apiId;
//     authorizer when c.Authorizer is not empty (for any event type: the caller may
//     pass the $connect authorizer's output with every event of the connection).
//   - CONNECT: headers and multiValueHeaders (names as given, normally as the
//     client sent them; headers holds the last value of a repeated header, as REST
//     payloads do), queryStringParameters and multiValueQueryStringParameters
//     (likewise), each omitted when empty; no body.
//   - MESSAGE: requestContext.messageId and body, always present (an empty message
//     has body ""). A binary frame is base64 with isBase64Encoded true; a text frame
//     is sent as is, unless it is not valid UTF-8 (which a WebSocket text frame may
//     not be, so only a lax caller sends it), which is base64 too so that JSON
//     cannot mangle it.
//   - DISCONNECT: requestContext.disconnectStatusCode (StatusCode as given, also 0)
//     and disconnectReason (also ""); headers and multiValueHeaders when given.
//   - stageVariables when not empty; isBase64Encoded always.
//
// Strings are encoded without HTML escaping. An unknown EventType, or an
// Authorizer that cannot be encoded, is an error.
func BuildWSEvent(c WSEventContext) ([]byte, error) {
	switch c.EventType {
	case WSEventConnect, WSEventMessage, WSEventDisconnect:
	default:
		return nil, fmt.Errorf("websocket event: unknown event type %q", c.EventType)
	}
	return encodeWSEvent(&c)
}

// times returns the event's time (now when unset, in UTC) and the connection's (the event's when
// unset).
func (c *WSEventContext) times() (at, connectedAt time.Time) {
	at = c.Time
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	connectedAt = c.ConnectedAt
	if connectedAt.IsZero() {
		connectedAt = at
	}
	return at, connectedAt
}

// buildWSEventJSON is BuildWSEvent through encoding/json: the reference the hand-written encoder
// (encodeWSEvent) is held to, and what writes an event whose authorizer does not encode, so that
// the error is worded as encoding/json words it.
func buildWSEventJSON(c *WSEventContext) ([]byte, error) {
	at, connectedAt := c.times()

	rc := wsRequestContext{
		RouteKey:          c.RouteKey,
		EventType:         c.EventType,
		ExtendedRequestID: c.RequestID,
		RequestTime:       at.Format(eventTimeLayout),
		MessageDirection:  "IN",
		Stage:             c.Stage,
		ConnectedAt:       connectedAt.UnixMilli(),
		RequestTimeEpoch:  at.UnixMilli(),
		Identity:          wsIdentity{UserAgent: c.UserAgent, SourceIP: c.SourceIP},
		RequestID:         c.RequestID,
		DomainName:        c.DomainName,
		ConnectionID:      c.ConnectionID,
		APIID:             c.APIID,
		Authorizer:        c.Authorizer,
	}
	ev := wsEvent{StageVariables: nilIfEmpty(c.StageVariables)}

	switch c.EventType {
	case WSEventConnect:
		ev.Headers, ev.MultiValueHeaders = wsSingleValues(c.Headers)
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = wsSingleValues(c.Query)
	case WSEventMessage:
		rc.MessageID = c.MessageID
		body, b64 := wsEventBody(c)
		ev.Body, ev.IsBase64Encoded = &body, b64
	case WSEventDisconnect:
		ev.Headers, ev.MultiValueHeaders = wsSingleValues(c.Headers)
		code := c.StatusCode
		reason := c.Reason
		rc.DisconnectStatusCode = &code
		rc.DisconnectReason = &reason
	default:
		return nil, fmt.Errorf("websocket event: unknown event type %q", c.EventType)
	}
	ev.RequestContext = rc

	var out bytes.Buffer
	out.Grow(768 + len(c.Body)*4/3)
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&ev); err != nil {
		return nil, fmt.Errorf("encode websocket event: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// wsEventBody returns the body of a MESSAGE event, and whether it is base64.
func wsEventBody(c *WSEventContext) (string, bool) {
	if len(c.Body) == 0 {
		return "", false
	}
	if !c.Binary && utf8.Valid(c.Body) {
		return string(c.Body), false
	}
	return base64.StdEncoding.EncodeToString(c.Body), true
}

// wsEvent is a WebSocket Lambda event as API Gateway writes it: the fields of
// events.APIGatewayWebsocketProxyRequest it sets, in its order.
type wsEvent struct {
	Headers                         map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders,omitempty"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string   `json:"stageVariables,omitempty"`
	RequestContext                  wsRequestContext    `json:"requestContext"`
	Body                            *string             `json:"body,omitempty"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

// wsRequestContext is the requestContext of a WebSocket event.
type wsRequestContext struct {
	RouteKey             string         `json:"routeKey"`
	MessageID            string         `json:"messageId,omitempty"`
	DisconnectStatusCode *int           `json:"disconnectStatusCode,omitempty"`
	Authorizer           map[string]any `json:"authorizer,omitempty"`
	EventType            string         `json:"eventType"`
	ExtendedRequestID    string         `json:"extendedRequestId"`
	RequestTime          string         `json:"requestTime"`
	MessageDirection     string         `json:"messageDirection"`
	DisconnectReason     *string        `json:"disconnectReason,omitempty"`
	Stage                string         `json:"stage"`
	ConnectedAt          int64          `json:"connectedAt"`
	RequestTimeEpoch     int64          `json:"requestTimeEpoch"`
	Identity             wsIdentity     `json:"identity"`
	RequestID            string         `json:"requestId"`
	DomainName           string         `json:"domainName"`
	ConnectionID         string         `json:"connectionId"`
	APIID                string         `json:"apiId"`
}

// wsIdentity is requestContext.identity of a WebSocket event.
type wsIdentity struct {
	UserAgent string `json:"userAgent"`
	SourceIP  string `json:"sourceIp"`
}

// wsSingleValues returns the single-value map (last value of each name) and the
// multi-value map of values, both nil when values has no non-empty entry.
func wsSingleValues(values map[string][]string) (map[string]string, map[string][]string) {
	var single map[string]string
	var multi map[string][]string
	for name, vs := range values {
		if len(vs) == 0 {
			continue
		}
		if single == nil {
			single = make(map[string]string, len(values))
			multi = make(map[string][]string, len(values))
		}
		single[name] = vs[len(vs)-1]
		multi[name] = vs
	}
	return single, multi
}

// WSErrorFrame returns the text frame API Gateway sends a client whose message
// matched no route (message "Forbidden") or whose integration failed ("Internal
// server error"), spaced as API Gateway writes it:
//
//	{"message": "Forbidden", "connectionId":"R1kmxc2VNjMCFIA=", "requestId":"R1knPH17NjMFftw="}
func WSErrorFrame(message, connectionID, requestID string) []byte {
	b := make([]byte, 0, 48+len(message)+len(connectionID)+len(requestID))
	b = append(b, `{"message": `...)
	b = appendEventString(b, message)
	b = append(b, `, "connectionId":`...)
	b = appendEventString(b, connectionID)
	b = append(b, `, "requestId":`...)
	b = appendEventString(b, requestID)
	return append(b, '}')
}

// wsDroppedResponseHeader reports whether a function may not set the handshake
// response header with the lower-case name, beyond droppedResponseHeader's list:
// the WebSocket server computes Sec-WebSocket-Accept and negotiates extensions
// itself.
func wsDroppedResponseHeader(lower string) bool {
	return lower == "sec-websocket-accept" || lower == "sec-websocket-extensions"
}

// ParseWSResponse reads the output of a WebSocket route's function, $connect's in
// particular: like an HTTP API payload 2.0 response (see [WriteResponse]).
//
//   - A JSON object with a statusCode key is a structured response: status from
//     statusCode (200–599), headers from headers, body from body (decoded from
//     base64 when isBase64Encoded is true). A malformed one (bad statusCode,
//     headers, body or base64) is an error wrapping ErrMalformedResponse: the
//     gateway treats it as an integration failure. cookies are ignored (a handshake
//     response header map holds one value per name).
//   - Any other valid JSON is status 200 with the JSON text as body (a JSON string
//     as its decoded text), and no headers.
//   - Output that is not JSON, empty output included, is status 200 with the
//     output, untouched, as body.
//
// For $connect, a status outside 2xx refuses the handshake with that status, and
// headers (e.g. Sec-WebSocket-Protocol) go on the handshake response. Headers that
// would break HTTP framing or the handshake are dropped (those WriteResponse drops,
// Sec-WebSocket-Accept and Sec-WebSocket-Extensions); of names differing only in
// case, the one last in sorted order is kept, as WriteResponse does. headers is
// nil when there are none.
func ParseWSResponse(out []byte) (status int, headers map[string]string, body []byte, err error) {
	text := bytes.TrimSpace(out)
	if len(text) == 0 || !json.Valid(text) {
		return 200, nil, out, nil
	}
	r, err := parseFunctionResponse(text)
	if err != nil {
		return 0, nil, nil, err
	}
	if text[0] != '{' || !wsHasStatusCode(text) {
		return r.status, nil, r.body, nil
	}
	var seen map[string]string // lower-case name → name in headers
	for _, h := range r.headers {
		lower := strings.ToLower(h.name)
		if wsDroppedResponseHeader(lower) {
			continue
		}
		if headers == nil {
			headers = make(map[string]string, len(r.headers))
			seen = make(map[string]string, len(r.headers))
		}
		if prev, ok := seen[lower]; ok {
			delete(headers, prev)
		}
		seen[lower] = h.name
		headers[h.name] = h.value
	}
	return r.status, headers, r.body, nil
}

// wsHasStatusCode reports whether the valid JSON object text has a statusCode key,
// the mark of a structured response.
func wsHasStatusCode(text []byte) bool {
	s := wsScanner{data: text}
	s.pos++ // '{'
	for {
		s.skipSpace()
		switch s.data[s.pos] {
		case '}':
			return false
		case ',':
			s.pos++
			s.skipSpace()
		}
		if wsKeyEqual(s.scanString(), "statusCode") {
			return true
		}
		s.skipSpace()
		s.pos++ // ':'
		s.skipSpace()
		s.skipValue()
	}
}
