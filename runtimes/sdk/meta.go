package sdk

import (
	"encoding/json"
	"strconv"
	"strings"
)

// parseInvocation decodes the invocation metadata the host sends: a flat JSON object of strings and
// integers. encoding/json costs about 10 µs per call inside a WebAssembly guest, so the common case —
// plain strings and integers — is scanned by hand, and anything unusual falls back to encoding/json.
func parseInvocation(b []byte, inv *Invocation) error {
	// One string for the document: the fields are slices of it, one allocation for them all.
	if !scanInvocation(string(b), inv) {
		*inv = Invocation{}
		return json.Unmarshal(b, inv)
	}
	return nil
}

func scanInvocation(b string, inv *Invocation) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		key, n, ok := scanString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, n)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return false
		}
		if b[i] == '"' {
			val, n, ok := scanString(b, i)
			if !ok {
				return false
			}
			switch key {
			case "requestId":
				inv.RequestID = val
			case "functionName":
				inv.FunctionName = val
			case "functionVersion":
				inv.FunctionVersion = val
			case "traceparent":
				inv.TraceParent = val
			default:
				if foldsToKnownKey(key) {
					return false // another case of a name (encoding/json matches it), or a number's name
				}
			}
			i = n
		} else {
			j := i
			for j < len(b) && (b[j] == '-' || b[j] >= '0' && b[j] <= '9') {
				j++
			}
			v, err := strconv.ParseInt(b[i:j], 10, 64)
			if err != nil {
				return false
			}
			switch key {
			case "memoryLimitInMB":
				inv.MemoryLimitInMB = int(v)
			case "deadlineMs":
				inv.DeadlineMs = v
			default:
				if foldsToKnownKey(key) {
					return false // another case of a name (encoding/json matches it), or a string's name
				}
			}
			i = j
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// scanString reads a JSON string without escapes starting at b[i] == '"'.
func scanString(b string, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return b[i+1 : j], j + 1, true
		case '\\':
			return "", 0, false
		}
		if b[j] < 0x20 || b[j] >= 0x80 {
			return "", 0, false // control characters and non-ASCII: leave them to encoding/json
		}
	}
	return "", 0, false
}

func skipSpace(b string, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

var metaKeys = []string{"requestId", "functionName", "functionVersion", "traceparent", "memoryLimitInMB", "deadlineMs"}

func foldsToKnownKey(k string) bool {
	for _, m := range metaKeys {
		if strings.EqualFold(k, m) {
			return true
		}
	}
	return false
}
