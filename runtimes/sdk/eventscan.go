package sdk

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The decoder's JSON scanning: white space, tokens, strings, numbers, and skipping what it does not
// read.

func (d *eventDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, or 0 at the end.
func (d *eventDecoder) peek() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// open consumes the '{' that starts an object, reporting whether it has members.
func (d *eventDecoder) open() (more, ok bool) {
	if d.peek() != '{' {
		return false, false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return false, true
	}
	return true, true
}

// key reads a member's name and the ':' after it. The name may alias the input.
func (d *eventDecoder) key() ([]byte, bool) {
	d.space()
	k, _, _, ok := d.unquote()
	if !ok || d.peek() != ':' {
		return nil, false
	}
	d.i++
	return k, true
}

// next consumes the ',' or '}' after a member, reporting whether another member follows.
func (d *eventDecoder) next() (more, ok bool) {
	switch d.peek() {
	case ',':
		d.i++
		return true, true
	case '}':
		d.i++
		return false, true
	}
	return false, false
}

// literal consumes lit if it comes next.
func (d *eventDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// null consumes a null if one comes next.
func (d *eventDecoder) null() bool {
	return d.peek() == 'n' && d.literal("null")
}

// str decodes a string; null leaves *p as it is.
func (d *eventDecoder) str(p *string) bool {
	switch d.peek() {
	case '"':
		s, ok := d.string()
		*p = s
		return ok
	case 'n':
		return d.literal("null")
	}
	return false
}

// bool decodes a boolean; null leaves *p as it is.
func (d *eventDecoder) bool(p *bool) bool {
	switch d.peek() {
	case 't':
		*p = true
		return d.literal("true")
	case 'f':
		*p = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return false
}

// int64 decodes an integer written without fraction or exponent, as encoding/json accepts into an
// int64; null leaves *p as it is.
func (d *eventDecoder) int64(p *int64) bool {
	c := d.peek()
	if c == 'n' {
		return d.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return false
	}
	start := d.i
	if !d.number() {
		return false
	}
	digits := d.b[start:d.i]
	if digits[0] == '-' {
		digits = digits[1:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false // a fraction or exponent: encoding/json rejects it
		}
	}
	if len(digits) > 18 { // may overflow
		n, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
		*p = n
		return err == nil
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if d.b[start] == '-' {
		n = -n
	}
	*p = n
	return true
}

// number consumes a number, checking its syntax.
func (d *eventDecoder) number() bool {
	b, i := d.b, d.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	d.i = i
	return true
}

// strMap decodes an object of strings. Like encoding/json it adds to a map already there, stores ""
// for a null value and makes the map nil for null.
func (d *eventDecoder) strMap(p *map[string]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	more, ok := d.open()
	if !ok {
		return false
	}
	m := *p
	if m == nil {
		m = make(map[string]string)
		*p = m
	}
	for more {
		k, ok := d.mapKey()
		if !ok {
			return false
		}
		var v string
		if !d.str(&v) {
			return false
		}
		m[k] = v
		if more, ok = d.next(); !ok {
			return false
		}
	}
	return true
}

// strSliceMap decodes an object of string arrays, as strMap does.
func (d *eventDecoder) strSliceMap(p *map[string][]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	more, ok := d.open()
	if !ok {
		return false
	}
	m := *p
	if m == nil {
		m = make(map[string][]string)
		*p = m
	}
	for more {
		k, ok := d.mapKey()
		if !ok {
			return false
		}
		var v []string
		if !d.strSlice(&v) {
			return false
		}
		m[k] = v
		if more, ok = d.next(); !ok {
			return false
		}
	}
	return true
}

// strSlice decodes an array of strings into *p, which must be nil: null elements become "", an empty
// array a non-nil empty slice, null a nil slice.
func (d *eventDecoder) strSlice(p *[]string) bool {
	if d.null() {
		*p = nil
		return true
	}
	if d.peek() != '[' {
		return false
	}
	d.i++
	s := []string{}
	if d.peek() == ']' {
		d.i++
		*p = s
		return true
	}
	for {
		var v string
		if !d.str(&v) {
			return false
		}
		s = append(s, v)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			*p = s
			return true
		default:
			return false
		}
	}
}

// mapKey reads a map key and the ':' after it.
func (d *eventDecoder) mapKey() (string, bool) {
	d.space()
	k, ok := d.string()
	if !ok || d.peek() != ':' {
		return "", false
	}
	d.i++
	return k, true
}

// string reads a string value.
func (d *eventDecoder) string() (string, bool) {
	s, start, fresh, ok := d.unquote()
	switch {
	case !ok:
		return "", false
	case fresh:
		// s was allocated for this string alone and is never written again.
		return unsafe.String(unsafe.SliceData(s), len(s)), true
	case d.s != "":
		return d.s[start : start+len(s)], true
	}
	return string(s), true
}

// unquote reads the string starting at d.b[d.i] and returns its contents as encoding/json decodes them.
// Unless fresh, the result is d.b[start:start+len(s)].
func (d *eventDecoder) unquote() (s []byte, start int, fresh, ok bool) {
	b := d.b
	if d.i >= len(b) || b[d.i] != '"' {
		return nil, 0, false, false
	}
	start = d.i + 1
	for j := start; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			d.i = j + 1
			return b[start:j], start, false, true
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			s, ok := d.unquoteSlow(start, j)
			return s, 0, true, ok
		}
	}
	return nil, 0, false, false
}

// unquoteSlow decodes a string with escapes or non-ASCII bytes from b[j], b[start:j] being plain. As
// encoding/json does, it turns invalid UTF-8 and unpaired surrogates into U+FFFD.
func (d *eventDecoder) unquoteSlow(start, j int) ([]byte, bool) {
	b := d.b
	out := make([]byte, j-start, j-start+64)
	copy(out, b[start:j])
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return out, true
		case c == '\\':
			if j+1 >= len(b) {
				return nil, false
			}
			switch e := b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r := hex4(b, j+2)
				if r < 0 {
					return nil, false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
						if r2 := hex4(b, j+2); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								j += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, false
			}
			j += 2
		case c < ' ':
			return nil, false
		case c < utf8.RuneSelf:
			out = append(out, c)
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				out = append(out, "\uFFFD"...)
			} else {
				out = append(out, b[j:j+size]...)
			}
			j += size
		}
	}
	return nil, false
}

// hex4 parses the four hex digits at b[i:], or returns -1.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skip consumes one value of any kind, checking its syntax; depth is its nesting below the caller.
func (d *eventDecoder) skip(depth int) bool {
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		if d.peek() == '}' {
			d.i++
			return true
		}
		for {
			if d.peek() != '"' || !d.skipString() || d.peek() != ':' {
				return false
			}
			d.i++
			if !d.skip(depth + 1) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		if d.peek() == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return d.number()
	}
	return false
}

// skipString consumes a string, checking its syntax (encoding/json does not check its UTF-8).
func (d *eventDecoder) skipString() bool {
	b := d.b
	for j := d.i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c == '\\':
			if j+1 >= len(b) {
				return false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if hex4(b, j+2) < 0 {
					return false
				}
				j += 5
			default:
				return false
			}
		case c < ' ':
			return false
		}
	}
	return false
}
