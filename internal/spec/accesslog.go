package spec

import (
	"fmt"
	"slices"
	"strings"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// AccessLog is a stage's `accessLog:`: a line for every request (in WebSocket APIs, every connect,
// message and disconnect) the stage serves, in Format, written to Destination off the request path.
type AccessLog struct {
	// Format is one of the presets AccessLogCLF, AccessLogJSON (the default), AccessLogXML and
	// AccessLogCSV, or a line of text with $context variables (AccessLogVariables), at most
	// MaxAccessLogFormat bytes, that names $context.requestId or $context.extendedRequestId.
	Format string `json:"format"`
	// Destination is AccessLogStdout (the default), AccessLogFilePrefix and an absolute path (relative
	// to the stack file's directory in the file), or AccessLogGroupPrefix and a log group name: the
	// stack's log stream, where `gatehouse logs --access` and the AWS API's CloudWatch Logs calls
	// read it.
	Destination string `json:"destination"`
	// MaxFileMB is the size at which a file destination is rotated (`maxFileMB:`, default
	// DefaultAccessLogFileMB, 1..MaxAccessLogFileMB): the file is renamed PATH.1 (older ones move
	// up to PATH.AccessLogFilesKept) and a new one started. 0 for other destinations.
	MaxFileMB int `json:"maxFileMB,omitempty"`
}

// Access log presets, destinations and limits.
const (
	AccessLogCLF  = "clf"
	AccessLogJSON = "json"
	AccessLogXML  = "xml"
	AccessLogCSV  = "csv"

	AccessLogStdout      = "stdout"
	AccessLogFilePrefix  = "file:"
	AccessLogGroupPrefix = "group:"

	// MaxAccessLogFormat bounds a format, as API Gateway's 3 KB.
	MaxAccessLogFormat = 3 << 10
	// DefaultAccessLogFileMB and MaxAccessLogFileMB bound maxFileMB.
	DefaultAccessLogFileMB = 64
	MaxAccessLogFileMB     = 4096
	// AccessLogFilesKept is how many rotated files are kept beside the one being written.
	AccessLogFilesKept = 5
	// MaxLogGroupName bounds a log group's name, as CloudWatch Logs' 512.
	MaxLogGroupName = 512
)

// AccessLogPreset returns the format of a preset's name, as API Gateway's console writes them for
// HTTP APIs, and false for other names.
func AccessLogPreset(name string) (string, bool) {
	switch name {
	case AccessLogCLF:
		return `$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod $context.routeKey $context.protocol" $context.status $context.responseLength $context.requestId`, true
	case AccessLogJSON:
		return `{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength"}`, true
	case AccessLogXML:
		return `<request id="$context.requestId"><ip>$context.identity.sourceIp</ip><requestTime>$context.requestTime</requestTime><httpMethod>$context.httpMethod</httpMethod><routeKey>$context.routeKey</routeKey><status>$context.status</status><protocol>$context.protocol</protocol><responseLength>$context.responseLength</responseLength></request>`, true
	case AccessLogCSV:
		return `$context.identity.sourceIp,$context.requestTime,$context.httpMethod,$context.routeKey,$context.protocol,$context.status,$context.responseLength,$context.requestId`, true
	}
	return "", false
}

// AccessLogVariables are the $context variables an access log format may name (without
// "$context."), for HTTP and WebSocket APIs; besides them, authorizer.claims.NAME and
// authorizer.NAME name a JWT claim and a function authorizer's context value.
func AccessLogVariables() []string {
	return []string{
		"accountId", "apiId", "authorize.error", "authorize.latency", "authorize.status", "authorizer.error",
		"authorizer.principalId", "connectedAt", "connectionId", "domainName", "domainPrefix", "error.message",
		"error.messageString", "error.responseType", "eventType", "extendedRequestId", "httpMethod",
		"identity.sourceIp", "identity.userAgent", "integration.error", "integration.integrationStatus",
		"integration.latency", "integration.status", "integrationErrorMessage", "integrationLatency",
		"integrationStatus", "messageId", "path", "protocol", "requestId", "requestTime", "requestTimeEpoch",
		"responseLatency", "responseLength", "routeKey", "stage", "status", "traceId",
	}
}

// AccessLogTokens splits a format into its text and the names of its $context variables (without
// "$context."): text[i] comes before vars[i], and text has one more item than vars. A variable's
// name is the longest run of letters, digits, _, - and . after "$context." (a trailing . or - is
// text, as in "$context.status."); "$context." followed by none of those is text.
func AccessLogTokens(format string) (text, vars []string) {
	const prefix = "$context."
	var lit strings.Builder
	for {
		i := strings.Index(format, prefix)
		if i < 0 {
			lit.WriteString(format)
			return append(text, lit.String()), vars
		}
		rest := format[i+len(prefix):]
		n := 0
		for n < len(rest) && (rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= '0' && rest[n] <= '9' ||
			rest[n] == '_' || rest[n] == '.' || rest[n] == '-') {
			n++
		}
		for n > 0 && (rest[n-1] == '.' || rest[n-1] == '-') {
			n--
		}
		if n == 0 {
			lit.WriteString(format[:i+len(prefix)])
			format = rest
			continue
		}
		lit.WriteString(format[:i])
		text = append(text, lit.String())
		lit.Reset()
		vars = append(vars, rest[:n])
		format = rest[n:]
	}
}

// checkAccessLog checks a stage's access log.
func checkAccessLog(path []string, a AccessLog) *checkErr {
	fp := sub(path, "format")
	format := a.Format
	if preset, ok := AccessLogPreset(format); ok {
		format = preset
	} else if !strings.Contains(format, "$context.") {
		return errf(fp, false, "%s is neither a preset (%s, %s, %s, %s) nor a line with $context variables", yamlnode.QuoteShort(a.Format),
			AccessLogCLF, AccessLogJSON, AccessLogXML, AccessLogCSV)
	}
	if len(format) > MaxAccessLogFormat {
		return errf(fp, false, "the format has %d bytes; at most %d", len(format), MaxAccessLogFormat)
	}
	_, vars := AccessLogTokens(format)
	known := AccessLogVariables()
	hasID := false
	for _, v := range vars {
		switch {
		case v == "requestId" || v == "extendedRequestId":
			hasID = true
		case slices.Contains(known, v):
		case strings.HasPrefix(v, "authorizer.claims.") && len(v) > len("authorizer.claims."), strings.HasPrefix(v, "authorizer.") && len(v) > len("authorizer."):
		default:
			return errf(fp, false, "$context.%s is not a variable an access log has%s", v, didyoumean.Suggest(v, known))
		}
	}
	if !hasID {
		return errf(fp, false, "the format must name $context.requestId or $context.extendedRequestId, as API Gateway's must")
	}
	dp := sub(path, "destination")
	switch d := a.Destination; {
	case d == AccessLogStdout:
		if a.MaxFileMB != 0 {
			return errf(sub(path, "maxFileMB"), false, "maxFileMB is for file: destinations")
		}
	case strings.HasPrefix(d, AccessLogFilePrefix):
		if p := strings.TrimPrefix(d, AccessLogFilePrefix); p == "" || p[0] != '/' {
			return errf(dp, false, "%s: want file: and a path", yamlnode.QuoteShort(d))
		}
		if a.MaxFileMB < 1 || a.MaxFileMB > MaxAccessLogFileMB {
			return errf(sub(path, "maxFileMB"), false, "%d is out of range: want 1 to %d", a.MaxFileMB, MaxAccessLogFileMB)
		}
	case strings.HasPrefix(d, AccessLogGroupPrefix):
		if g := strings.TrimPrefix(d, AccessLogGroupPrefix); !ValidLogGroupName(g) {
			return errf(dp, false, "%s is not a log group name: want 1 to %d letters, digits and . - _ / #", yamlnode.QuoteShort(g), MaxLogGroupName)
		}
		if a.MaxFileMB != 0 {
			return errf(sub(path, "maxFileMB"), false, "maxFileMB is for file: destinations")
		}
	default:
		return errf(dp, false, "%s: want %s, %sPATH or %sNAME", yamlnode.QuoteShort(d), AccessLogStdout, AccessLogFilePrefix, AccessLogGroupPrefix)
	}
	return nil
}

// ValidLogGroupName reports whether name may name a log group, as CloudWatch Logs' names.
func ValidLogGroupName(name string) bool {
	return len(name) >= 1 && len(name) <= MaxLogGroupName && allIn(name, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-/#", r)
	})
}

// String describes the access log for messages.
func (a AccessLog) String() string { return fmt.Sprintf("%s to %s", a.Format, a.Destination) }
