package gateway

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// This file holds the hand-written encoder of WebSocket events. Its output is byte for byte what
// buildWSEventJSON (encoding/json without HTML escaping) writes for the same WSEventContext;
// TestEncodeWSEvent and FuzzEncodeWSEvent hold it to that. An authorizer, when there is one, is
// encoded by encoding/json and spliced in.

// encodeWSEvent encodes the event of c, whose EventType is known, as buildWSEventJSON does.
func encodeWSEvent(c *WSEventContext) ([]byte, error) {
	var authorizer []byte
	if len(c.Authorizer) > 0 {
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(c.Authorizer); err != nil {
			return buildWSEventJSON(c) // the error as encoding/json words it for the event
		}
		authorizer = bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	}
	at, connectedAt := c.times()
	var body string
	var b64 bool
	if c.EventType == WSEventMessage {
		body, b64 = wsEventBody(c)
	}

	n := 420 + 2*len(c.RequestID) + len(c.RouteKey) + len(c.MessageID) + len(c.Stage) + len(c.UserAgent) +
		len(c.SourceIP) + len(c.DomainName) + len(c.ConnectionID) + len(c.APIID) + len(c.Reason) +
		len(authorizer) + len(body) + stringMapSize(c.StageVariables) + 2*multiMapSize(c.Headers) + 2*multiMapSize(c.Query)
	dst := make([]byte, 0, n+n/16)

	dst = append(dst, '{')
	if c.EventType != WSEventMessage {
		dst = appendWSValues(dst, "headers", c.Headers)
	}
	if c.EventType == WSEventConnect {
		dst = appendWSValues(dst, "queryStringParameters", c.Query)
	}
	if len(c.StageVariables) > 0 {
		dst = append(dst, `"stageVariables":`...)
		dst = appendEventStringMap(dst, c.StageVariables)
		dst = append(dst, ',')
	}
	dst = append(dst, `"requestContext":{"routeKey":`...)
	dst = appendEventString(dst, c.RouteKey)
	switch c.EventType {
	case WSEventMessage:
		if c.MessageID != "" {
			dst = append(dst, `,"messageId":`...)
			dst = appendEventString(dst, c.MessageID)
		}
	case WSEventDisconnect:
		dst = append(dst, `,"disconnectStatusCode":`...)
		dst = strconv.AppendInt(dst, int64(c.StatusCode), 10)
	}
	if authorizer != nil {
		dst = append(dst, `,"authorizer":`...)
		dst = append(dst, authorizer...)
	}
	dst = append(dst, `,"eventType":`...)
	dst = appendEventString(dst, c.EventType)
	dst = append(dst, `,"extendedRequestId":`...)
	dst = appendEventString(dst, c.RequestID)
	// The time's layout writes digits, letters, '/', ':', ' ' and a sign: nothing to escape.
	dst = append(dst, `,"requestTime":"`...)
	dst = at.AppendFormat(dst, eventTimeLayout)
	dst = append(dst, `","messageDirection":"IN"`...)
	if c.EventType == WSEventDisconnect {
		dst = append(dst, `,"disconnectReason":`...)
		dst = appendEventString(dst, c.Reason)
	}
	dst = append(dst, `,"stage":`...)
	dst = appendEventString(dst, c.Stage)
	dst = append(dst, `,"connectedAt":`...)
	dst = strconv.AppendInt(dst, connectedAt.UnixMilli(), 10)
	dst = append(dst, `,"requestTimeEpoch":`...)
	dst = strconv.AppendInt(dst, at.UnixMilli(), 10)
	dst = append(dst, `,"identity":{"userAgent":`...)
	dst = appendEventString(dst, c.UserAgent)
	dst = append(dst, `,"sourceIp":`...)
	dst = appendEventString(dst, c.SourceIP)
	dst = append(dst, `},"requestId":`...)
	dst = appendEventString(dst, c.RequestID)
	dst = append(dst, `,"domainName":`...)
	dst = appendEventString(dst, c.DomainName)
	dst = append(dst, `,"connectionId":`...)
	dst = appendEventString(dst, c.ConnectionID)
	dst = append(dst, `,"apiId":`...)
	dst = appendEventString(dst, c.APIID)
	dst = append(dst, '}')
	if c.EventType == WSEventMessage {
		dst = append(dst, `,"body":`...)
		dst = appendEventString(dst, body)
	}
	dst = append(dst, `,"isBase64Encoded":`...)
	dst = strconv.AppendBool(dst, b64)
	return append(dst, '}'), nil
}

// multiMapSize is about the length of m encoded as a multi-value map.
func multiMapSize(m map[string][]string) int {
	n := 0
	for k, vs := range m {
		n += len(k) + 6
		for _, v := range vs {
			n += len(v) + 3
		}
	}
	return n
}

// appendWSValues appends the single-value and the multi-value field of values (name, then
// "multiValue" + Name) as buildWSEventJSON writes wsSingleValues' maps, each followed by a comma;
// nothing when values has no non-empty entry.
func appendWSValues(dst []byte, name string, values map[string][]string) []byte {
	var stack [32]string
	keys := stack[:0]
	for k, vs := range values {
		if len(vs) > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return dst
	}
	slices.SortFunc(keys, strings.Compare)
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		vs := values[k]
		dst = appendEventString(dst, k)
		dst = append(dst, ':')
		dst = appendEventString(dst, vs[len(vs)-1])
	}
	dst = append(dst, `},"multiValue`...)
	dst = append(dst, name[0]-('a'-'A'))
	dst = append(dst, name[1:]...)
	dst = append(dst, `":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendEventString(dst, k)
		dst = append(dst, ":["...)
		for j, v := range values[k] {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = appendEventString(dst, v)
		}
		dst = append(dst, ']')
	}
	return append(dst, "},"...)
}
