package gateway

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds the hand-written parser of the common payload 2.0 response. It reads the
// output in one pass, with a handful of allocations, and declines (ok false) whenever it is not
// certain to produce what parseFunctionResponseJSON would: every malformed response, keys with
// escapes, duplicate keys, strings with invalid UTF-8, values nested deeper than
// fastMaxDepth, and outputs that are not objects. The caller then runs
// parseFunctionResponseJSON, so the result is the same for every output, errors included.
// FuzzParseFunctionResponse holds the two to that.

// fastMaxDepth is how deeply the fast parser follows nested arrays and objects (encoding/json
// allows 10,000); deeper output goes to encoding/json.
const fastMaxDepth = 64

// jsonPlain marks the bytes that a JSON string holds as they are: printable ASCII other than
// the quote and the backslash.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsonHex is the value of a hexadecimal digit, or -1.
var jsonHex = func() (t [256]int8) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = int8(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = int8(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = int8(c - 'A' + 10)
		default:
			t[c] = -1
		}
	}
	return t
}()

// Flags of a scanned JSON string.
const (
	strEscaped  = 1 << iota // holds a backslash escape
	strNonASCII             // holds bytes of 0x80 and above
)

// scanJSONString checks the JSON string starting with the quote at b[i] and returns the index
// after its closing quote and what it holds; ok is false when it is not a valid JSON string.
func scanJSONString(b []byte, i int) (end int, flags int, ok bool) {
	j := i + 1
	for j < len(b) {
		c := b[j]
		if jsonPlain[c] {
			j++
			continue
		}
		switch {
		case c == '"':
			return j + 1, flags, true
		case c == '\\':
			flags |= strEscaped
			if j+1 >= len(b) {
				return 0, 0, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+5 >= len(b) || jsonHex[b[j+2]] < 0 || jsonHex[b[j+3]] < 0 || jsonHex[b[j+4]] < 0 || jsonHex[b[j+5]] < 0 {
					return 0, 0, false
				}
				j += 6
			default:
				return 0, 0, false
			}
		case c < 0x20:
			return 0, 0, false
		default: // 0x80 and above; encoding/json's scanner takes any such byte
			flags |= strNonASCII
			j++
		}
	}
	return 0, 0, false
}

// scanJSONNumber checks the JSON number starting at b[i] and returns the index after it.
func scanJSONNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
		if i == start {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
		if i == start {
			return 0, false
		}
	}
	return i, true
}

// skipJSONSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// hasLiteral reports whether b holds lit at i.
func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// skipJSONValue checks the JSON value starting at b[i] (not whitespace) and returns the index
// after it. depth is the nesting of the value's container.
func skipJSONValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := scanJSONString(b, i)
		return end, ok
	case '{', '[':
		if depth >= fastMaxDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipJSONSpace(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, _, ok = scanJSONString(b, i); !ok {
					return 0, false
				}
				i = skipJSONSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipJSONSpace(b, i+1)
			}
			if i, ok = skipJSONValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipJSONSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = skipJSONSpace(b, i+1)
			case closer:
				return i + 1, true
			default:
				return 0, false
			}
		}
	case 't':
		return i + 4, hasLiteral(b, i, "true")
	case 'f':
		return i + 5, hasLiteral(b, i, "false")
	case 'n':
		return i + 4, hasLiteral(b, i, "null")
	default:
		return scanJSONNumber(b, i)
	}
}

// appendUnquotedJSON appends the text of the JSON string lit (quotes included, valid, its raw
// bytes valid UTF-8) to dst, decoded as encoding/json decodes it.
func appendUnquotedJSON(dst, lit []byte) []byte {
	s := lit[1 : len(lit)-1]
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:k]...)
		s = s[k:]
		switch c := s[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[2:6])
			s = s[6:]
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					r2 = hex4(s[2:6])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					s = s[6:]
					r = dec
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		s = s[2:]
	}
}

// hex4 is the value of four hexadecimal digits (already checked).
func hex4(h []byte) rune {
	return rune(jsonHex[h[0]])<<12 | rune(jsonHex[h[1]])<<8 | rune(jsonHex[h[2]])<<4 | rune(jsonHex[h[3]])
}

// fastString checks the JSON value v (without surrounding space) is a string this parser
// decodes as encoding/json does: not one with invalid UTF-8, which encoding/json coerces.
func fastString(v []byte) bool {
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	end, flags, ok := scanJSONString(v, 0)
	if !ok || end != len(v) {
		return false
	}
	return flags&strNonASCII == 0 || utf8.Valid(v)
}

// headerToken marks the bytes of an HTTP token (RFC 9110 §5.6.2), as validHeaderName checks.
var headerToken = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c < utf8.RuneSelf && validHeaderName(string(rune(c)))
	}
	return t
}()

// fastSpan is where a decoded string is in the fast parser's text buffer.
type fastSpan struct{ start, end int }

// fastHeader is a header of the fast parser: its name and value in the text buffer.
type fastHeader struct{ name, value fastSpan }

// parseFunctionResponseFast parses text, a trimmed payload 2.0 output, in the common shapes: an
// object, with statusCode or without. It returns ok false when it cannot be sure to give
// exactly what parseFunctionResponseJSON gives, including for every malformed output.
func parseFunctionResponseFast(text []byte) (*functionResponse, bool) {
	if len(text) < 2 || text[0] != '{' {
		return nil, false
	}
	// The values of the keys that matter, without surrounding space; nil when absent.
	var status, headers, cookies, body, isBase64 []byte
	i := skipJSONSpace(text, 1)
	if i < len(text) && text[i] == '}' {
		i++
	} else {
		for {
			if i >= len(text) || text[i] != '"' {
				return nil, false
			}
			end, flags, ok := scanJSONString(text, i)
			if !ok || flags&strEscaped != 0 {
				return nil, false // an escaped key may spell a known one
			}
			key := text[i+1 : end-1]
			i = skipJSONSpace(text, end)
			if i >= len(text) || text[i] != ':' {
				return nil, false
			}
			i = skipJSONSpace(text, i+1)
			start := i
			if i, ok = skipJSONValue(text, i, 1); !ok {
				return nil, false
			}
			var slot *[]byte
			switch string(key) {
			case "statusCode":
				slot = &status
			case "headers":
				slot = &headers
			case "cookies":
				slot = &cookies
			case "body":
				slot = &body
			case "isBase64Encoded":
				slot = &isBase64
			}
			if slot != nil {
				if *slot != nil {
					return nil, false // a repeated key: encoding/json keeps the last
				}
				*slot = text[start:i]
			}
			i = skipJSONSpace(text, i)
			if i >= len(text) {
				return nil, false
			}
			if text[i] == '}' {
				i++
				break
			}
			if text[i] != ',' {
				return nil, false
			}
			i = skipJSONSpace(text, i+1)
		}
	}
	if i != len(text) {
		return nil, false
	}
	if status == nil {
		return inferredResponse(append([]byte(nil), text...)), true
	}

	r := &functionResponse{}
	// statusCode: a JSON integer from 200 to 599 has three digits.
	if len(status) != 3 || status[0] < '2' || status[0] > '5' ||
		status[1] < '0' || status[1] > '9' || status[2] < '0' || status[2] > '9' {
		return nil, false
	}
	r.status = int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')
	if string(isBase64) == "null" {
		isBase64 = nil
	}
	b64 := string(isBase64) == "true"
	if isBase64 != nil && !b64 && string(isBase64) != "false" {
		return nil, false
	}
	if string(body) == "null" {
		body = nil
	}
	if body != nil && !fastString(body) {
		return nil, false
	}

	// The decoded header names and values, cookies and (when base64) body go into one buffer,
	// made a string once.
	var stack [512]byte
	buf := stack[:0]
	var hstack [16]fastHeader
	hs := hstack[:0]
	if headers != nil && string(headers) != "null" {
		if headers[0] != '{' {
			return nil, false
		}
		j := skipJSONSpace(headers, 1)
		if headers[j] != '}' {
			for {
				end, flags, _ := scanJSONString(headers, j) // checked by skipJSONValue
				if flags&strEscaped != 0 {
					return nil, false
				}
				var h fastHeader
				h.name.start = len(buf)
				for _, c := range headers[j+1 : end-1] {
					if !headerToken[c] {
						return nil, false
					}
				}
				if end-j == 2 {
					return nil, false // an empty name
				}
				buf = append(buf, headers[j+1:end-1]...)
				h.name.end = len(buf)
				j = skipJSONSpace(headers, end)
				j = skipJSONSpace(headers, j+1) // past ':'
				h.value.start = len(buf)
				switch c := headers[j]; {
				case c == '"':
					end, _, _ = scanJSONString(headers, j)
					if !fastString(headers[j:end]) {
						return nil, false
					}
					buf = appendUnquotedJSON(buf, headers[j:end])
				case c == 't':
					end = j + 4
					buf = append(buf, "true"...)
				case c == 'f':
					end = j + 5
					buf = append(buf, "false"...)
				case c == '-', '0' <= c && c <= '9':
					end, _ = scanJSONNumber(headers, j)
					buf = append(buf, headers[j:end]...)
				default:
					return nil, false
				}
				h.value.end = len(buf)
				if !validHeaderValueBytes(buf[h.value.start:h.value.end]) {
					return nil, false
				}
				hs = append(hs, h)
				j = skipJSONSpace(headers, end)
				if headers[j] == '}' {
					break
				}
				j = skipJSONSpace(headers, j+1) // past ','
			}
		}
	}

	var cstack [8]fastSpan
	cs := cstack[:0]
	if string(cookies) == "null" {
		cookies = nil
	}
	if cookies != nil {
		if cookies[0] != '[' {
			return nil, false
		}
		j := skipJSONSpace(cookies, 1)
		if cookies[j] != ']' {
			for {
				if cookies[j] != '"' {
					return nil, false // encoding/json makes null "", other values are malformed
				}
				end, _, _ := scanJSONString(cookies, j) // checked by skipJSONValue
				if !fastString(cookies[j:end]) {
					return nil, false
				}
				start := len(buf)
				buf = appendUnquotedJSON(buf, cookies[j:end])
				if !validHeaderValueBytes(buf[start:]) {
					return nil, false
				}
				cs = append(cs, fastSpan{start, len(buf)})
				j = skipJSONSpace(cookies, end)
				if cookies[j] == ']' {
					break
				}
				j = skipJSONSpace(cookies, j+1)
			}
		}
	}

	var bodySpan fastSpan
	if b64 && body != nil {
		bodySpan.start = len(buf)
		buf = appendUnquotedJSON(buf, body)
		bodySpan.end = len(buf)
	}

	all := string(buf)
	str := func(s fastSpan) string { return all[s.start:s.end] }

	if len(hs) > 0 {
		var sorted [16]responseHeader
		list := sorted[:0]
		for _, h := range hs {
			list = append(list, responseHeader{name: str(h.name), value: str(h.value)})
		}
		slices.SortFunc(list, func(a, b responseHeader) int { return strings.Compare(a.name, b.name) })
		kept := 0
		for k, h := range list {
			if k > 0 && list[k-1].name == h.name {
				return nil, false // a repeated name: encoding/json keeps the last
			}
			if !droppedResponseHeaderFold(h.name) {
				kept++
			}
		}
		if kept > 0 {
			r.headers = make([]responseHeader, 0, kept)
			for _, h := range list {
				if droppedResponseHeaderFold(h.name) {
					continue
				}
				if len(h.name) == len("content-type") && strings.EqualFold(h.name, "content-type") {
					r.contentType = h.value
				}
				r.headers = append(r.headers, h)
			}
		}
	}

	if cookies != nil {
		r.cookies = make([]string, len(cs))
		for k, s := range cs {
			r.cookies[k] = str(s)
		}
	}

	switch {
	case b64:
		text := str(bodySpan)
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return nil, false
		}
		r.body, r.base64 = b, text
	case body != nil:
		r.body = appendUnquotedJSON(make([]byte, 0, len(body)-2), body)
	default:
		r.body = []byte{}
	}
	return r, true
}

// validHeaderValueBytes is validHeaderValue for bytes.
func validHeaderValueBytes(value []byte) bool {
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// droppedResponseHeaderFold is droppedResponseHeader for a name in any case (an HTTP token,
// so ASCII).
func droppedResponseHeaderFold(name string) bool {
	switch len(name) {
	case 2, 7, 10, 14, 15, 16, 17: // the lengths of the names droppedResponseHeader lists
	default:
		return false
	}
	var lower [len("transfer-encoding")]byte
	for k := 0; k < len(name); k++ {
		c := name[k]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[k] = c
	}
	return droppedResponseHeader(string(lower[:len(name)]))
}
