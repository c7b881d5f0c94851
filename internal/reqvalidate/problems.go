package reqvalidate

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Limits of the text of a [BodyError].
const (
	// MaxErrorText is the most bytes BodyError.Error returns.
	MaxErrorText = 1024
	// maxProblemText is the most bytes of one problem; longer ones are cut with "...". It keeps
	// the first problem within MaxErrorText whatever it is.
	maxProblemText = 256
)

// BodyError is a request body that does not match its model, or is not JSON.
type BodyError struct {
	// Problems are what is wrong, sorted by location, then by message, without duplicates: at
	// most MaxProblems. Each is "LOCATION: MESSAGE", LOCATION the JSON pointer of the value at
	// fault ("/" for the whole body, "/items/0/name"); a body that is not JSON has one problem,
	// "not JSON: …". Each is one line of at most 256 bytes.
	Problems []string
	// More counts the validator's findings past the first MaxProblems problems.
	More int
}

// MaxProblems is the most problems a BodyError lists; the validator's other findings are only
// counted (BodyError.More).
const MaxProblems = 100

// Error returns the problems in the form of API Gateway's validation error string
// ($context.error.validationErrorString): a list in brackets, "[/: missing property 'name'; /price:
// got string, want integer]". The text is one line of at most MaxErrorText bytes: problems that do
// not fit are counted at the end, "... 12 more]".
func (e *BodyError) Error() string { return formatProblems(e.Problems, e.More) }

// formatProblems writes problems, and a count of more, as a bracketed list of at most
// MaxErrorText bytes.
func formatProblems(ps []string, more int) string {
	const sep = "; "
	var b strings.Builder
	b.WriteByte('[')
	// Room kept for the longest ending the list can have.
	tail := len(sep) + len("... ") + len(strconv.Itoa(len(ps)+more)) + len(" more]")
	for i, p := range ps {
		n := len(p)
		if i > 0 {
			n += len(sep)
		}
		end := tail
		if i == len(ps)-1 && more == 0 {
			end = len("]")
		}
		if b.Len()+n+end > MaxErrorText {
			more += len(ps) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(p)
	}
	if more > 0 {
		if b.Len() > 1 {
			b.WriteString(sep)
		}
		b.WriteString("... ")
		b.WriteString(strconv.Itoa(more))
		b.WriteString(" more")
	}
	b.WriteByte(']')
	return b.String()
}

// leaf is one finding of the validator: where and what.
type leaf struct {
	loc []string
	k   jsonschema.ErrorKind
}

// problems returns the leaf findings of a validation error as sorted, unique problems, at most
// MaxProblems of them, and the count of the findings left out.
func problems(verr *jsonschema.ValidationError) (ps []string, more int) {
	var leaves []leaf
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if e.ErrorKind != nil {
				leaves = append(leaves, leaf{e.InstanceLocation, e.ErrorKind})
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	if len(leaves) == 0 {
		return []string{"/: " + message(verr.ErrorKind)}, 0
	}
	// Sort by location first, token by token (array indexes as numbers), without formatting
	// messages: only leaves at the same location need their messages compared.
	slices.SortStableFunc(leaves, func(a, b leaf) int { return compareLocations(a.loc, b.loc) })
	out := make([]string, 0, min(len(leaves), MaxProblems))
	for i := 0; i < len(leaves); {
		if len(out) >= MaxProblems {
			more += len(leaves) - i
			break
		}
		j := i + 1
		for j < len(leaves) && compareLocations(leaves[i].loc, leaves[j].loc) == 0 {
			j++
		}
		loc := pointer(leaves[i].loc)
		start := len(out)
		for _, l := range leaves[i:j] {
			out = append(out, clip(loc+": "+message(l.k)))
		}
		slices.Sort(out[start:])
		out = append(out[:start], slices.Compact(out[start:])...)
		i = j
	}
	if len(out) > MaxProblems {
		more += len(out) - MaxProblems
		out = out[:MaxProblems]
	}
	return out, more
}

// compareLocations orders instance locations token by token, a parent before its children. Tokens
// that are decimal numbers (array indexes) come first, by value; the others follow in byte order.
func compareLocations(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareTokens(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func compareTokens(x, y string) int {
	dx, dy := isDigits(x), isDigits(y)
	switch {
	case dx && dy && len(x) != len(y):
		return cmp.Compare(len(x), len(y))
	case dx && !dy:
		return -1
	case !dx && dy:
		return 1
	}
	return strings.Compare(x, y)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// pointer returns an instance location as a JSON pointer, "/" for the whole body.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return oneLine(b.String())
}

// message returns the validator's message for a finding, in English. Findings with numbers are
// written here: the validator's messages group digits ("1,500") and print big.Rat values as
// float64 ("9.007199254740992×10¹⁵").
func message(ek jsonschema.ErrorKind) string {
	switch k := ek.(type) {
	case *kind.AdditionalProperties:
		// The validator lists them in the order it met them, which is map order.
		ek = &kind.AdditionalProperties{Properties: slices.Sorted(slices.Values(k.Properties))}
	case *kind.Minimum:
		return "minimum: got " + ratString(k.Got) + ", want >= " + ratString(k.Want)
	case *kind.Maximum:
		return "maximum: got " + ratString(k.Got) + ", want <= " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "exclusiveMinimum: got " + ratString(k.Got) + ", want > " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "exclusiveMaximum: got " + ratString(k.Got) + ", want < " + ratString(k.Want)
	case *kind.MultipleOf:
		return "multipleOf: got " + ratString(k.Got) + ", want a multiple of " + ratString(k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("minLength: got %d characters, want >= %d", k.Got, k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("maxLength: got %d characters, want <= %d", k.Got, k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("minItems: got %d items, want >= %d", k.Got, k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("maxItems: got %d items, want <= %d", k.Got, k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("minProperties: got %d properties, want >= %d", k.Got, k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("maxProperties: got %d properties, want <= %d", k.Got, k.Want)
	case *kind.AdditionalItems:
		return fmt.Sprintf("additionalItems: the last %d items are not allowed", k.Count)
	case *kind.UniqueItems:
		return fmt.Sprintf("uniqueItems: items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
	case *kind.MinContains:
		return fmt.Sprintf("minContains: %d items match contains, want >= %d", len(k.Got), k.Want)
	case *kind.MaxContains:
		return fmt.Sprintf("maxContains: %d items match contains, want <= %d", len(k.Got), k.Want)
	case *kind.OneOf:
		if len(k.Subschemas) >= 2 {
			return fmt.Sprintf("oneOf: subschemas %d and %d both match, want exactly one", k.Subschemas[0], k.Subschemas[1])
		}
	case *kind.RefCycle:
		return "reference cycle at " + schemaLocation(k.URL)
	}
	// A ValidationError with no location prints "at '': " and the finding's message; this avoids
	// asking for a message printer of golang.org/x/text.
	s := (&jsonschema.ValidationError{ErrorKind: ek}).Error()
	s = strings.TrimPrefix(s, "at '': ")
	return oneLine(s)
}

// oneLine escapes what would break a line or a log record: control characters, line and
// paragraph separators and invalid UTF-8 become \u escapes (\ufffd for a byte that is not UTF-8).
func oneLine(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\ufffd`)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			b.WriteString(`\u`)
			h := strconv.FormatInt(int64(r), 16)
			b.WriteString(strings.Repeat("0", 4-len(h)))
			b.WriteString(h)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// ratString writes r in decimal, exactly when it has at most 30 digits after the point and 60
// before it (as any number written in JSON with a modest exponent does), else as a float64.
func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		if r.Num().BitLen() <= 200 {
			return r.Num().String()
		}
	} else if d := r.Denom(); d.BitLen() <= 100 && r.Num().BitLen() <= 300 {
		// A decimal fraction's denominator is 2^a * 5^b; it needs max(a, b) digits.
		d = new(big.Int).Set(d)
		twos := int(d.TrailingZeroBits())
		d.Rsh(d, uint(twos))
		fives := 0
		five, q, m := big.NewInt(5), new(big.Int), new(big.Int)
		for {
			q.QuoRem(d, five, m)
			if m.Sign() != 0 {
				break
			}
			d.Set(q)
			fives++
		}
		if d.IsInt64() && d.Int64() == 1 && max(twos, fives) <= 30 {
			return r.FloatString(max(twos, fives))
		}
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// clip cuts s to at most maxProblemText bytes, at a rune boundary, marking the cut with "...".
func clip(s string) string {
	if len(s) <= maxProblemText {
		return s
	}
	n := maxProblemText - len("...")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
