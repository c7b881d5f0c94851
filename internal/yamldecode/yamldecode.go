// Package yamldecode is the one YAML decoder of Gatehouse's file formats: the stack file
// (internal/stackfile) and the bundle manifest (functions). It parses a document with goccy/go-yaml
// (after checking its size, encoding and shape) and walks the syntax tree itself instead of using
// yaml.Unmarshal, so that every error knows the position and key path of what it is about, numbers
// are never silently converted (memory: 128.5, timeout: 3), values such as environment variables keep
// their text as written (PORT: 08080), and mappings keep file order and line numbers.
//
// A [Decoder] is strict: a caller reads each mapping with a fixed set of keys ([Decoder.Fields]),
// and an unknown key is an error with a did-you-mean suggestion. Anchors, aliases, merge keys (<<)
// and the !!str tag work as in YAML, unless the [Format] is Plain, which refuses them before parsing.
// Every error is an [*Error] whose message starts with "FILE:LINE:COLUMN: PATH: ".
//
// Key paths are slices of keys; a list item is [Index](i). [FormatPath] writes a path as messages
// show it: functions.hello.timeout, apis.web.routes["GET /x"], secrets[1].
package yamldecode

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is a problem in a YAML document.
//
// Error() formats it as "FILE:LINE:COLUMN: PATH: MSG". Line is 0 when the problem has no place in
// the file (the file cannot be read, or a value built in code was checked); then the format is
// "FILE: PATH: MSG". File and Path are omitted when empty.
type Error struct {
	// File names the document, as the caller gave it.
	File string
	// Line and Column are 1-based, of the offending key or value.
	Line, Column int
	// Path is the key path, e.g. `functions.hello.timeout` or `apis.web.routes["GET /hello"]`.
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (reading the file); see Unwrap.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" || e.Line > 0 {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IndexMark starts a path element that is a list index rather than a key; see [Index]. It is
// internal/spec's mark too, so that the key paths of spec's validation errors locate as they are.
const IndexMark = "\x00#"

// Index returns the path element of the i-th item of a list.
func Index(i int) string { return IndexMark + strconv.Itoa(i) }

// Sub returns path extended by keys, without sharing path's backing array.
func Sub(path []string, keys ...string) []string {
	return append(slices.Clip(path), keys...)
}

// FormatPath writes a key path as messages show it: keys made of letters, digits, - and _ joined by
// dots, other keys as ["quoted"], list items as [i].
func FormatPath(path []string) string {
	var b strings.Builder
	for _, seg := range path {
		if i, ok := strings.CutPrefix(seg, IndexMark); ok {
			b.WriteString("[" + i + "]")
			continue
		}
		if plainKey(seg) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(seg)
			continue
		}
		b.WriteString("[" + strconv.Quote(seg) + "]")
	}
	return b.String()
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
