// Package mapping parses and applies API Gateway's parameter-mapping expressions and the body
// templates of mock integrations.
//
// A route's integration may carry requestParameters and responseParameters, as HTTP APIs define
// them: keys such as "overwrite:header.x-tenant" name what to change in the request sent to the
// backend (or in the response sent to the client), and values such as "$request.header.x-id" or
// "Bearer ${stageVariables.token}" say what to put there. [CompileRequest] and [CompileResponse]
// check a whole set once, when a stack is loaded; [RequestMap.Apply] and [ResponseMap.Apply] then
// run per request without parsing anything again.
//
// The package reads nothing itself: the gateway supplies the values of references through a
// [Source] (or a [TemplateSource] for templates), and uses [BodyValue] to answer references into
// JSON bodies.
//
// # Mock body templates
//
// [ParseTemplate] accepts a small part of API Gateway's mapping-template language (Velocity), enough
// to build a mock response body from the request:
//
//   - $context.<name>, where the name may have dots: $context.requestId, $context.identity.sourceIp
//   - $stageVariables.<name>
//   - $input.body, the request body as received
//   - $input.params('<name>'), a path parameter, else a query-string parameter, else a header
//   - $input.json('<path>'), the JSON text of a value in the body, or null
//   - $input.path('<path>'), the text of a value in the body
//
// A JSONPath is "$", or "$" followed by .name and [index] steps: '$.items[0].id'. Arguments may be
// quoted with ' or ". JSON lookups read the first [MaxBodyBytes] of the body, as [BodyValue] does.
// Each reference may also be written in braces, ${context.requestId}, which ends it before text
// that would otherwise continue it, and quiet, $!context.requestId or $!{context.requestId}. In
// Velocity a reference with no value is written as its own text unless it is quiet; Gatehouse
// writes nothing for either, so the quiet spelling is accepted and behaves the same.
//
// Any other text that starts with $ (such as $util.escapeJavaScript(...), or a price like $5) is
// copied as it is, as Velocity does for references it cannot resolve. Directives are not supported:
// a line that starts (after spaces) with #if, #foreach, #set, #else, #elseif, #end or another
// Velocity directive is refused, and so are a ${ that is not closed on its line and a malformed
// $input call.
package mapping

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (with [errors.Is]) by every error this package returns: a key, value or
// template that it does not accept.
var ErrInvalid = errors.New("invalid mapping")

// invalidError is a message that matches ErrInvalid without repeating its text.
type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
