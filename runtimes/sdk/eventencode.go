package sdk

import (
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

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
		dst = appendStringMap(dst, headers)
	}
	dst = append(dst, `,"multiValueHeaders":`...)
	if multi == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendSortedMap(dst, multi, appendStringSlice)
	}
	dst = append(dst, `,"body":`...)
	dst = appendString(dst, body)
	if b64 {
		dst = append(dst, `,"isBase64Encoded":true`...)
	}
	return dst
}

// appendStringMap writes m as json.Marshal does, its keys sorted. A few members (most responses'
// headers) are sorted in place on the stack: a guest pays dearly for each allocation and map lookup.
func appendStringMap(dst []byte, m map[string]string) []byte {
	type member struct{ k, v string }
	var small [8]member
	if len(m) > len(small) {
		return appendSortedMap(dst, m, appendString)
	}
	n := 0
	for k, v := range m {
		// Insertion sort as they come.
		i := n
		for i > 0 && small[i-1].k > k {
			small[i] = small[i-1]
			i--
		}
		small[i] = member{k, v}
		n++
	}
	dst = append(dst, '{')
	for i, kv := range small[:n] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, kv.k)
		dst = append(dst, ':')
		dst = appendString(dst, kv.v)
	}
	return append(dst, '}')
}

// appendSortedMap writes m as json.Marshal does, its keys sorted, each value written by value.
func appendSortedMap[V any](dst []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	dst = append(dst, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = value(dst, m[k])
	}
	return append(dst, '}')
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
