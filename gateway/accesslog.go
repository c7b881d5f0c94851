package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"

	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// AccessLogger takes the access log lines of the stages that have one, with the stage's
// destination. It is called on the request path and must not block: it queues the line, or drops
// it and counts the drop.
type AccessLogger interface {
	Log(to AccessLogDestination, line []byte)
}

// AccessLogDestination is where a stage's access log goes: a spec.AccessLog's Destination, and the
// size at which a file destination is rotated.
type AccessLogDestination struct {
	Target       string
	MaxFileBytes int64
}

// AccessLogFormat is a stage's access log, compiled: the format's text and $context variables.
type AccessLogFormat struct {
	text, vars  []string
	Destination AccessLogDestination
}

// CompileAccessLog compiles a stage's access log (its format a preset or a line of variables).
func CompileAccessLog(a spec.AccessLog) *AccessLogFormat {
	format := a.Format
	if preset, ok := spec.AccessLogPreset(format); ok {
		format = preset
	}
	text, vars := spec.AccessLogTokens(format)
	return &AccessLogFormat{text: text, vars: vars, Destination: AccessLogDestination{Target: a.Destination, MaxFileBytes: int64(a.MaxFileMB) << 20}}
}

// accessInfo is what the gateway learns about a request (or a WebSocket event) as it serves it,
// for its access log line.
type accessInfo struct {
	api       *compiledAPI
	stage     *Stage
	routeKey  string
	requestID string
	start     time.Time
	// The integration: when it answered, with what; 0 and "" when there was none.
	integrationLatency time.Duration
	integrationStatus  int
	integrationError   string
	// The authorizer: its failure, and what it found.
	authorizerError string
	authorizer      *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	wsAuthorizer    map[string]any
	// err is the error the request ended with, if any; errMessage, when set, is the message it
	// was answered with (a REST API's), and validation a body's validation errors.
	err                    error
	errMessage, validation string
	// respType is the gateway response type a REST API answered the error with.
	respType string
	// WebSocket events only.
	eventType, connectionID, messageID string
	connectedAt                        time.Time
	// Of the request.
	method, path, protocol, sourceIP, userAgent, domain, traceParent string
	status, responseLength                                           int
}

// accessLine renders a's line for info.
func (s *Server) accessLine(a *AccessLogFormat, info *accessInfo) []byte {
	b := make([]byte, 0, 256)
	for i, v := range a.vars {
		b = append(b, a.text[i]...)
		val, ok := s.accessValue(info, v)
		if !ok || val == "" {
			b = append(b, '-')
			continue
		}
		if v == "error.messageString" {
			b = strconv.AppendQuote(b, val)
			continue
		}
		b = appendEscaped(b, val)
	}
	return append(b, a.text[len(a.text)-1]...)
}

// appendEscaped appends s with the characters that would break a JSON string, an XML attribute's
// quotes or the line escaped as in JSON (a log line stays one line, whatever a header holds).
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = fmt.Appendf(b, `\u%04x`, c)
		default:
			b = append(b, c)
		}
	}
	return b
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// accessValue is the value of $context.v for info; false when it has none (written "-").
func (s *Server) accessValue(info *accessInfo, v string) (string, bool) {
	switch v {
	case "requestId", "extendedRequestId":
		return info.requestID, true
	case "apiId":
		if info.api != nil {
			return info.api.ID, true
		}
	case "accountId":
		return s.cfg.AccountID, true
	case "stage":
		if info.stage != nil {
			return info.stage.Name, true
		}
	case "httpMethod":
		return info.method, true
	case "path":
		return info.path, true
	case "protocol":
		return info.protocol, true
	case "routeKey":
		return info.routeKey, true
	case "identity.sourceIp":
		return info.sourceIP, true
	case "identity.userAgent":
		return info.userAgent, true
	case "domainName":
		return info.domain, true
	case "domainPrefix":
		return eventDomainPrefix(info.domain), true
	case "requestTime":
		return info.start.UTC().Format(eventTimeLayout), true
	case "requestTimeEpoch":
		return strconv.FormatInt(info.start.UnixMilli(), 10), true
	case "status":
		return strconv.Itoa(info.status), info.status != 0
	case "responseLength":
		return strconv.Itoa(info.responseLength), true
	case "responseLatency":
		return ms(time.Since(info.start)), true
	case "integrationLatency", "integration.latency":
		return ms(info.integrationLatency), info.integrationStatus != 0
	case "integrationStatus", "integration.integrationStatus":
		// The Lambda service's status: 200 whenever the function ran, even if it failed.
		return "200", info.integrationStatus != 0
	case "integration.status":
		return strconv.Itoa(info.integrationStatus), info.integrationStatus > 0
	case "integrationErrorMessage", "integration.error":
		return info.integrationError, info.integrationError != ""
	case "error.validationErrorString":
		return info.validation, info.validation != ""
	case "error.message", "error.messageString":
		if info.errMessage != "" {
			return info.errMessage, true
		}
		if info.err != nil {
			_, msg := s.classify(info.err)
			var d *denial
			if errors.As(info.err, &d) {
				msg = d.message
			}
			return msg, true
		}
	case "error.responseType":
		if info.respType != "" {
			return info.respType, true
		}
		if info.err != nil {
			return responseType(info.status, info.err), true
		}
	case "authorizer.error":
		return info.authorizerError, info.authorizerError != ""
	case "authorizer.principalId":
		if l := info.lambdaContext(); l != nil {
			p, ok := l["principalId"].(string)
			return p, ok
		}
	case "traceId":
		if parts := strings.Split(info.traceParent, "-"); len(parts) == 4 {
			return parts[1], true
		}
	case "eventType":
		return info.eventType, info.eventType != ""
	case "connectionId":
		return info.connectionID, info.connectionID != ""
	case "messageId":
		return info.messageID, info.messageID != ""
	case "connectedAt":
		return strconv.FormatInt(info.connectedAt.UnixMilli(), 10), !info.connectedAt.IsZero()
	case "authorize.status":
		if info.authorizerError != "" {
			return "403", true
		}
		return "200", info.wsAuthorizer != nil || info.authorizer != nil
	case "authorize.error":
		return info.authorizerError, info.authorizerError != ""
	}
	if claim, ok := strings.CutPrefix(v, "authorizer.claims."); ok {
		if info.authorizer != nil && info.authorizer.JWT != nil {
			c, ok := info.authorizer.JWT.Claims[claim]
			return c, ok
		}
		return "", false
	}
	if key, ok := strings.CutPrefix(v, "authorizer."); ok {
		if l := info.lambdaContext(); l != nil {
			return scalarText(l[key])
		}
	}
	return "", false
}

// lambdaContext is what a function authorizer put in its context; nil without one.
func (info *accessInfo) lambdaContext() map[string]any {
	if info.authorizer != nil && info.authorizer.Lambda != nil {
		return info.authorizer.Lambda
	}
	if info.wsAuthorizer != nil {
		return info.wsAuthorizer
	}
	return nil
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool, float64, int, int64, json.Number:
		return fmt.Sprint(x), true
	}
	b, err := json.Marshal(v)
	return string(b), err == nil
}

// responseType names the gateway response a failed request got, as API Gateway's error.responseType.
func responseType(status int, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "INTEGRATION_TIMEOUT"
	case errors.Is(err, bus.ErrNoWorkers), errors.Is(err, bus.ErrOverloaded):
		return "DEFAULT_5XX"
	case status == fiber.StatusNotFound:
		return "RESOURCE_NOT_FOUND"
	case status == fiber.StatusUnauthorized:
		return "UNAUTHORIZED"
	case status == fiber.StatusForbidden:
		return "ACCESS_DENIED"
	case status == fiber.StatusTooManyRequests:
		return "THROTTLED"
	case status == fiber.StatusRequestEntityTooLarge:
		return "REQUEST_TOO_LARGE"
	case status >= 500:
		return "INTEGRATION_FAILURE"
	}
	return "DEFAULT_4XX"
}

// integrationError is what $context.integrationErrorMessage says of a failed call: the function's
// own error message when it failed, or why it could not answer.
func integrationError(err error) string {
	if f := bus.FailureOf(err, bus.FunctionFailure{}); f.ErrorMessage != "" {
		return f.ErrorMessage
	}
	return err.Error()
}
