package mapping

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// MaxBodyBytes is how much of a body references into it read, as in API Gateway: a body is cut to
// its first 100 KB before the JSON path is looked up.
const MaxBodyBytes = 100 << 10

// BodyValue returns the value at path in the JSON document body. The path is the Name of a
// RequestBody or ResponseBody [Ref]: names of object members and [n] array indexes, joined by dots,
// such as "user.id" or "items[0].name"; "" is the whole document. A string is returned as its
// text, a number or a boolean as its JSON text, an object or an array as compact JSON. A value that
// is null or missing, a path that is not well formed and a body that is not JSON give ("", false).
// When an object has a member twice, the last one counts.
//
// Only the first [MaxBodyBytes] of body are read, so a longer document, cut there, is not JSON and
// has no values.
func BodyValue(body []byte, path string) (string, bool) {
	doc, ok := cutJSON(body)
	if !ok {
		return "", false
	}
	return textOf(valueAt(doc, path))
}

// cutJSON returns the first MaxBodyBytes of body, and whether they are a JSON document.
func cutJSON(body []byte) ([]byte, bool) {
	if len(body) > MaxBodyBytes {
		body = body[:MaxBodyBytes]
	}
	return body, json.Valid(body)
}

// valueAt returns the JSON text of the value at path in doc, a valid JSON document.
func valueAt(doc []byte, path string) ([]byte, bool) {
	if !validBodyPath(path) {
		return nil, false
	}
	start, end, ok := find(doc, path)
	if !ok || start >= end {
		return nil, false
	}
	return doc[start:end], true
}

// textOf returns the value whose JSON text is raw as BodyValue does.
func textOf(raw []byte, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	switch raw[0] {
	case 'n':
		return "", false
	case '"':
		return jsonString(raw), true
	case '{', '[':
		return compact(raw), true
	}
	return string(raw), true
}

// jsonOf returns the value whose JSON text is raw as $input.json does: compact JSON text, or
// "null" when there is no value.
func jsonOf(raw []byte, ok bool) string {
	if !ok {
		return "null"
	}
	if raw[0] == '{' || raw[0] == '[' {
		return compact(raw)
	}
	return string(raw)
}

// A body path is a sequence of steps: a member name, or an array index. The first step is a name
// or an index; each later one is ".name" or "[n]". nextStep reads the step at path[i:], returning
// the name (or the index, with isIndex set) and where the next step starts. ok is false for a path
// that is not well formed.
func nextStep(path string, i int) (name string, index int, isIndex bool, next int, ok bool) {
	if i >= len(path) {
		return "", 0, false, i, false
	}
	if path[i] == '[' {
		j := i + 1
		n := 0
		for j < len(path) && '0' <= path[j] && path[j] <= '9' {
			if j-i > 9 { // up to nine digits: no overflow, and no array is that long
				return "", 0, false, i, false
			}
			n = n*10 + int(path[j]-'0')
			j++
		}
		if j == i+1 || j >= len(path) || path[j] != ']' {
			return "", 0, false, i, false
		}
		return "", n, true, j + 1, true
	}
	if i > 0 {
		if path[i] != '.' {
			return "", 0, false, i, false
		}
		i++
	}
	j := i
	for j < len(path) && path[j] != '.' && path[j] != '[' && path[j] != ']' {
		j++
	}
	if j == i {
		return "", 0, false, i, false
	}
	return path[i:j], 0, false, j, true
}

// validBodyPath reports whether path is "" or a well-formed sequence of steps.
func validBodyPath(path string) bool {
	for i := 0; i < len(path); {
		_, _, _, next, ok := nextStep(path, i)
		if !ok {
			return false
		}
		i = next
	}
	return true
}

// find returns the bounds of the value at path in doc, which must be valid JSON. It walks the text
// without decoding it, skipping what is not on the path.
func find(doc []byte, path string) (start, end int, ok bool) {
	pos := skipSpace(doc, 0)
	for i := 0; i < len(path); {
		name, index, isIndex, next, ok := nextStep(path, i)
		if !ok {
			return 0, 0, false
		}
		i = next
		if isIndex {
			pos, ok = element(doc, pos, index)
		} else {
			pos, ok = member(doc, pos, name)
		}
		if !ok {
			return 0, 0, false
		}
	}
	if pos >= len(doc) {
		return 0, 0, false
	}
	return pos, skipValue(doc, pos), true
}

// member returns where the value of the last member called name starts in the object at doc[pos].
func member(doc []byte, pos int, name string) (int, bool) {
	if byteAt(doc, pos) != '{' {
		return 0, false
	}
	found := -1
	pos++
	for {
		pos = skipSpace(doc, pos)
		if byteAt(doc, pos) != '"' {
			break // "}" (or, in a document that is not JSON, anything else)
		}
		keyEnd := skipString(doc, pos)
		match := keyEquals(doc[pos:keyEnd], name)
		pos = skipSpace(doc, keyEnd)
		if byteAt(doc, pos) != ':' {
			break
		}
		pos = skipSpace(doc, pos+1)
		if match {
			found = pos
		}
		pos = skipSpace(doc, skipValue(doc, pos))
		if byteAt(doc, pos) != ',' {
			break
		}
		pos++
	}
	return found, found >= 0
}

// element returns where element n starts in the array at doc[pos].
func element(doc []byte, pos, n int) (int, bool) {
	if byteAt(doc, pos) != '[' {
		return 0, false
	}
	pos = skipSpace(doc, pos+1)
	if c := byteAt(doc, pos); c == ']' || c == 0 {
		return 0, false
	}
	for k := 0; ; k++ {
		if k == n {
			return pos, true
		}
		pos = skipSpace(doc, skipValue(doc, pos))
		if byteAt(doc, pos) != ',' {
			return 0, false
		}
		pos = skipSpace(doc, pos+1)
	}
}

// keyEquals reports whether the JSON string raw (with its quotes) says name.
func keyEquals(raw []byte, name string) bool {
	if len(raw) < 2 {
		return false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner) == name
	}
	return jsonString(raw) == name
}

// jsonString decodes the JSON string raw (with its quotes).
func jsonString(raw []byte) string {
	if len(raw) >= 2 {
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner)
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// compact returns the JSON text raw without insignificant white space.
func compact(raw []byte) string {
	var b bytes.Buffer
	b.Grow(len(raw))
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func byteAt(doc []byte, i int) byte {
	if i < 0 || i >= len(doc) {
		return 0
	}
	return doc[i]
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the end of the JSON string that starts at doc[i].
func skipString(doc []byte, i int) int {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(doc)
}

// skipValue returns the end of the JSON value that starts at doc[i].
func skipValue(doc []byte, i int) int {
	if i >= len(doc) {
		return len(doc)
	}
	switch doc[i] {
	case '"':
		return skipString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				j = skipString(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(doc)
	}
	j := i
	for j < len(doc) {
		switch doc[j] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return j
		}
		j++
	}
	return j
}
