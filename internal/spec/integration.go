package spec

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/mapping"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// StageVariableRef is how an HTTP proxy integration's target names a stage variable:
// "${stageVariables.NAME}".
const StageVariableRef = "${stageVariables."

// checkIntegration checks the integration of the route key of an API (a WebSocket API when ws).
func (c *checker) checkIntegration(path []string, key string, in Integration, apiType string) *checkErr {
	ws := apiType == APITypeWebSocket
	switch in.Type {
	case IntegrationFunction:
	case IntegrationHTTPProxy, IntegrationMock:
		if ws {
			return errf(sub(path, "type"), false, "%s integrations are for http APIs; websocket routes take function integrations", in.Type)
		}
	default:
		return errf(sub(path, "type"), false, "unknown integration type %s: want %s, %s or %s", yamlnode.QuoteShort(in.Type),
			IntegrationFunction, IntegrationHTTPProxy, IntegrationMock)
	}
	switch {
	case in.InvocationType == "" || in.InvocationType == InvocationRequestResponse:
	case in.InvocationType != InvocationEvent:
		return errf(sub(path, "invocationType"), false, "%s is not an invocation type: want %s (the default) or %s", yamlnode.QuoteShort(in.InvocationType), InvocationRequestResponse, InvocationEvent)
	case ws:
		return errf(sub(path, "invocationType"), true, "only for http and rest APIs: a websocket route's function answers its client")
	case in.Type != IntegrationFunction:
		return errf(sub(path, "invocationType"), true, "only for function integrations; remove it")
	}
	if ws {
		if in.PayloadFormatVersion != "" {
			return errf(sub(path, "payloadFormatVersion"), true, "only for http APIs: websocket routes receive WebSocket events; remove it")
		}
		if in.Timeout.D() < MinWSIntegrationTimeout || in.Timeout.D() > MaxWSIntegrationTimeout {
			return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 29s (the limit for websocket APIs)", in.Timeout)
		}
		if in.ResponseParameters != nil {
			return errf(sub(path, "responseParameters"), true, "only for http APIs; remove it")
		}
		return c.checkTarget(sub(path, "target"), in.Target)
	}
	if in.Timeout.D() < MinIntegrationTimeout || in.Timeout.D() > MaxIntegrationTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 30s", in.Timeout)
	}
	if apiType == APITypeREST && in.Timeout.D() > MaxRESTIntegrationTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 29s (the limit for rest APIs)", in.Timeout)
	}
	if apiType == APITypeREST && in.Type == IntegrationFunction && in.PayloadFormatVersion != PayloadFormat1 {
		return errf(sub(path, "payloadFormatVersion"), false, "rest APIs send functions payload format %q; remove it", PayloadFormat1)
	}
	if in.Type != IntegrationHTTPProxy {
		if in.Method != "" {
			return errf(sub(path, "method"), true, "only for http_proxy integrations; remove it")
		}
		if in.TLS != nil {
			return errf(sub(path, "tls"), true, "only for http_proxy integrations; remove it")
		}
		if in.RequestParameters != nil {
			return errf(sub(path, "requestParameters"), true, "only for http_proxy integrations: a function receives the whole request in its event; remove it")
		}
	}
	if in.Type != IntegrationMock && (in.StatusCode != 0 || in.Headers != nil || in.Body != "") {
		return errf(path, true, "statusCode, headers and body are for mock integrations; remove them")
	}
	if e := checkResponseParameters(sub(path, "responseParameters"), in); e != nil {
		return e
	}
	switch in.Type {
	case IntegrationFunction:
		switch in.PayloadFormatVersion {
		case PayloadFormat2, PayloadFormat1:
		default:
			return errf(sub(path, "payloadFormatVersion"), false, "unknown payload format version %s: want %q or %q", yamlnode.QuoteShort(in.PayloadFormatVersion), PayloadFormat2, PayloadFormat1)
		}
		return c.checkTarget(sub(path, "target"), in.Target)
	case IntegrationHTTPProxy:
		return checkHTTPProxy(path, key, in)
	default:
		return checkMock(path, in)
	}
}

// checkHTTPProxy checks an http_proxy integration of the route key.
func checkHTTPProxy(path []string, key string, in Integration) *checkErr {
	if in.PayloadFormatVersion != "" && in.PayloadFormatVersion != PayloadFormat1 {
		return errf(sub(path, "payloadFormatVersion"), true, "http_proxy integrations send the request itself, not an event; remove it")
	}
	if in.Method != MethodAny && !slices.Contains(RouteMethods(), in.Method) {
		return errf(sub(path, "method"), false, "%s is not a method: want ANY (the client's method), GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS", yamlnode.QuoteShort(in.Method))
	}
	if msg := CheckProxyTarget(in.Target, key); msg != "" {
		return errf(sub(path, "target"), false, "%s", msg)
	}
	if t := in.TLS; t != nil {
		if t.CAFile != "" {
			if !filepath.IsAbs(t.CAFile) {
				return errf(sub(path, "tls", "caFile"), false, "%s is not an absolute path", yamlnode.QuoteShort(t.CAFile))
			}
			if _, err := os.Stat(t.CAFile); err != nil {
				return errf(sub(path, "tls", "caFile"), false, "cannot read %s: %v", yamlnode.QuoteShort(t.CAFile), err)
			}
		}
		if t.ServerName != "" && checkHost(t.ServerName) != "" {
			return errf(sub(path, "tls", "serverName"), false, "%s is not a host name", yamlnode.QuoteShort(t.ServerName))
		}
		if !strings.HasPrefix(in.Target, "https:") && !strings.HasPrefix(in.Target, StageVariableRef) {
			return errf(sub(path, "tls"), true, "only for https targets; the target is %s", yamlnode.QuoteShort(in.Target))
		}
	}
	if len(in.RequestParameters) > MaxMappings {
		return errf(sub(path, "requestParameters"), true, "more than %d mappings", MaxMappings)
	}
	if _, err := mapping.CompileRequest(in.RequestParameters); err != nil {
		return errf(sub(path, "requestParameters"), true, "%v", err)
	}
	return nil
}

// CheckProxyTarget checks an http_proxy integration's target URL for the route key, and returns
// what is wrong with it ("" when nothing). Stage variables may stand anywhere; path parameters
// ("{id}", "{proxy}" for "{proxy+}") must be the route's, in the URL's path; the $default route
// has none, and its request path is appended to the target's.
func CheckProxyTarget(target, key string) string {
	if target == "" {
		return "the backend's URL is required, such as http://orders.internal:8080/{proxy}"
	}
	// Stage variables are checked for their names, then stand for a plain word.
	plain, err := ExpandStageVariables(target, func(name string) (string, bool) {
		return "stagevar", true
	})
	if err != nil {
		return err.Error()
	}
	u, err := url.Parse(plain)
	if err != nil || u.Opaque != "" || u.User != nil {
		return fmt.Sprintf("%s is not a URL such as http://orders.internal:8080/{proxy}", yamlnode.QuoteShort(target))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("%s: the scheme must be http or https", yamlnode.QuoteShort(target))
	}
	if u.Host == "" {
		return fmt.Sprintf("%s has no host", yamlnode.QuoteShort(target))
	}
	if u.Fragment != "" {
		return fmt.Sprintf("%s: a backend URL has no #fragment", yamlnode.QuoteShort(target))
	}
	if strings.ContainsAny(u.Host, "{}") {
		return fmt.Sprintf("%s: path parameters may stand in the path only, not the host", yamlnode.QuoteShort(target))
	}
	params := map[string]bool{}
	if key != RouteDefault {
		if k, err := ParseRouteKey(key); err == nil {
			for _, s := range k.Segments {
				if s.Kind != SegmentLiteral {
					params[s.Text] = true
				}
			}
		}
	}
	rest := u.Path
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return fmt.Sprintf("%s: a \"}\" without its \"{\"", yamlnode.QuoteShort(target))
			}
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Sprintf("%s: a \"{\" without its \"}\"", yamlnode.QuoteShort(target))
		}
		name := rest[i+1 : i+j]
		if !params[name] {
			if key == RouteDefault {
				return fmt.Sprintf("%s names the path parameter {%s}, and the $default route has none: the request's path is appended to the target's", yamlnode.QuoteShort(target), name)
			}
			have := slices.Sorted(maps.Keys(params))
			if len(have) == 0 {
				return fmt.Sprintf("%s names the path parameter {%s}, and the route %s has none", yamlnode.QuoteShort(target), name, yamlnode.QuoteShort(key))
			}
			return fmt.Sprintf("%s names the path parameter {%s}, which is not one of the route's: %s", yamlnode.QuoteShort(target), name, "{"+strings.Join(have, "}, {")+"}")
		}
		rest = rest[i+j+1:]
	}
	return ""
}

// ExpandStageVariables replaces each "${stageVariables.NAME}" of s with its value from vars; a
// name that vars has no value for is an error, as is a malformed reference.
func ExpandStageVariables(s string, vars func(name string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest, ok := strings.CutPrefix(s[i:], StageVariableRef)
		if !ok {
			return "", fmt.Errorf("%s: only ${stageVariables.NAME} may stand in a target", yamlnode.QuoteShort(s[i:min(len(s), i+32)]))
		}
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", fmt.Errorf("${stageVariables. without its closing }")
		}
		name := rest[:j]
		if !validName(name, 64, true) {
			return "", fmt.Errorf("%s is not a stage variable name (letters, digits and _)", yamlnode.QuoteShort(name))
		}
		v, ok := vars(name)
		if !ok {
			return "", fmt.Errorf("the stage has no variable %s", name)
		}
		b.WriteString(v)
		s = rest[j+1:]
	}
}

// checkResponseParameters checks an integration's responseParameters.
func checkResponseParameters(path []string, in Integration) *checkErr {
	for _, code := range slices.Sorted(maps.Keys(in.ResponseParameters)) {
		n, err := strconv.Atoi(code)
		if err != nil || n < 200 || n > 599 || strconv.Itoa(n) != code {
			return errf(sub(path, code), true, "%s is not a status code: responseParameters are keyed by the integration's status code, 200 to 599", yamlnode.QuoteShort(code))
		}
		if len(in.ResponseParameters[code]) > MaxMappings {
			return errf(sub(path, code), true, "more than %d mappings", MaxMappings)
		}
	}
	if _, err := mapping.CompileResponse(in.ResponseParameters); err != nil {
		return errf(path, true, "%v", err)
	}
	return nil
}

// checkMock checks a mock integration.
func checkMock(path []string, in Integration) *checkErr {
	if in.Target != "" {
		return errf(sub(path, "target"), true, "a mock integration has no target: the gateway answers with statusCode, headers and body; remove it")
	}
	if in.PayloadFormatVersion != "" {
		return errf(sub(path, "payloadFormatVersion"), true, "only for function integrations; remove it")
	}
	if in.StatusCode < 100 || in.StatusCode > 599 {
		return errf(sub(path, "statusCode"), false, "%d is not a status code: want 100 to 599", in.StatusCode)
	}
	for _, k := range slices.Sorted(maps.Keys(in.Headers)) {
		if !validToken(k) {
			return errf(sub(path, "headers", k), true, "%s is not a header name", yamlnode.QuoteShort(k))
		}
		if strings.ContainsFunc(in.Headers[k], func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return errf(sub(path, "headers", k), false, "a header value cannot hold control characters")
		}
	}
	if len(in.Body) > MaxMockBodyBytes {
		return errf(sub(path, "body"), false, "the body template is %d bytes; at most %d", len(in.Body), MaxMockBodyBytes)
	}
	if _, err := mapping.ParseTemplate(in.Body); err != nil {
		return errf(sub(path, "body"), false, "%v", err)
	}
	return nil
}
