package reqvalidate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The locations of request parameters, as keys write them: "querystring.limit", "header.x-id",
// "path.id".
const (
	LocationQueryString = "querystring"
	LocationHeader      = "header"
	LocationPath        = "path"
)

// ErrParameterKey is a request parameter key [CheckParameterKey] refuses.
var ErrParameterKey = errors.New("invalid request parameter key")

// MissingParametersPrefix starts the message of [MissingParameters].
const MissingParametersPrefix = "Missing required request parameters: "

// MissingParameters checks a request for the parameters a method requires. required maps keys
// such as "querystring.limit", "header.x-id" and "path.id" to whether the parameter is required
// (API Gateway's method.request.* map, without the "method.request." prefix); lookup reports
// whether the request has the parameter at location (LocationQueryString, LocationHeader or
// LocationPath) with a value that is not empty. A header is looked up by its name as the key
// writes it: lookup should compare header names without regard to case.
//
// MissingParameters returns "" when no required parameter is missing, else API Gateway's message
// naming the missing ones, "Missing required request parameters: [limit, x-id]". The names are
// sorted: API Gateway lists them in the order the method declares them, which a map does not keep.
// Keys CheckParameterKey refuses are skipped.
func MissingParameters(required map[string]bool, lookup func(location, name string) bool) string {
	var missing []string
	for key, req := range required {
		if !req {
			continue
		}
		loc, name, err := splitParameterKey(key)
		if err != nil {
			continue
		}
		if !lookup(loc, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	slices.Sort(missing)
	return MissingParametersPrefix + "[" + strings.Join(missing, ", ") + "]"
}

// CheckParameterKey checks a key of a method's required parameters: "querystring.NAME",
// "header.NAME" or "path.NAME". The name may not be empty or hold white space, control characters
// or bytes that are not UTF-8; a header name must be an HTTP token (letters, digits and
// !#$%&'*+-.^_`|~). The error wraps ErrParameterKey.
func CheckParameterKey(key string) error {
	_, _, err := splitParameterKey(key)
	return err
}

const parameterKeyForms = "querystring.NAME, header.NAME or path.NAME"

// splitParameterKey returns the location and name of a request parameter key.
func splitParameterKey(key string) (location, name string, err error) {
	if rest, ok := strings.CutPrefix(key, "method.request."); ok {
		return "", "", fmt.Errorf("%w %q: write it without method.request., as %q", ErrParameterKey, clip(key), clip(rest))
	}
	location, name, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", fmt.Errorf("%w %q: want %s", ErrParameterKey, clip(key), parameterKeyForms)
	}
	switch location {
	case LocationQueryString, LocationHeader, LocationPath:
	default:
		return "", "", fmt.Errorf("%w %q: unknown location %q: want %s", ErrParameterKey, clip(key), clip(location), parameterKeyForms)
	}
	if name == "" {
		return "", "", fmt.Errorf("%w %q: the name is missing: want %s", ErrParameterKey, clip(key), parameterKeyForms)
	}
	if !utf8.ValidString(name) {
		return "", "", fmt.Errorf("%w %q: the name is not UTF-8", ErrParameterKey, clip(key))
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "", "", fmt.Errorf("%w %q: the name holds %q: white space and control characters are not allowed", ErrParameterKey, clip(key), r)
		}
		if location == LocationHeader && !isTokenRune(r) {
			return "", "", fmt.Errorf("%w %q: %q is not allowed in a header name: want letters, digits and !#$%%&'*+-.^_`|~", ErrParameterKey, clip(key), r)
		}
	}
	return location, name, nil
}

// isTokenRune reports whether r may appear in an HTTP token (RFC 9110 §5.6.2).
func isTokenRune(r rune) bool {
	return r < utf8.RuneSelf && (isAlnum(byte(r)) || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
}
