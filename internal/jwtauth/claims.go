package jwtauth

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// stringClaims renders every claim as API Gateway hands it to a function: a string each, null
// claims dropped.
func stringClaims(c map[string]any) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		if v == nil {
			continue
		}
		out[k] = claimString(v)
	}
	return out
}

// claimString renders one claim value (as decoded with json.Number): strings as they are, numbers
// as written in the token, booleans as "true"/"false", arrays as "[a b]", objects as JSON text.
func claimString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	case []any:
		var b strings.Builder
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(claimString(e))
		}
		b.WriteByte(']')
		return b.String()
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(j)
	}
}

// tokenScopes returns the token's scopes: the space-separated scope claim, or else scp, a
// space-separated string or an array of strings.
func tokenScopes(c map[string]any) []string {
	if s, ok := c["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch scp := c["scp"].(type) {
	case string:
		return strings.Fields(scp)
	case []any:
		out := make([]string, 0, len(scp))
		for _, e := range scp {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// maxNumericDate caps NumericDate values (year 9999) so the conversion to time never overflows.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate claim: seconds since the epoch, possibly fractional.
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, false
	}
	f = max(min(f, maxNumericDate), -maxNumericDate)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
