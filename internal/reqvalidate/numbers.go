package reqvalidate

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Limits of the numbers in bodies and models. The validator turns a number into a big.Rat, which
// for 1e999999 takes half a second and for 1e9999999 fails, and then panics.
const (
	// MaxNumberText is the most characters a number may be written with.
	MaxNumberText = 100
	// MaxExponent bounds the exponent a number may be written with, either way: 1e400 and
	// 1e-400, well past float64's range, are allowed; 1e401 is not.
	MaxExponent = 400
)

// numberOK reports whether a JSON number is within MaxNumberText and MaxExponent.
func numberOK(s string) bool {
	if len(s) > MaxNumberText {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != 'e' && s[i] != 'E' {
			continue
		}
		exp := s[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		for len(exp) > 1 && exp[0] == '0' {
			exp = exp[1:]
		}
		n, err := strconv.Atoi(exp)
		return err == nil && n <= MaxExponent
	}
	return true
}

// badNumbers returns the locations of the numbers in v that numberOK refuses, sorted.
func badNumbers(v any) [][]string {
	var bad [][]string
	var loc []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case json.Number:
			if !numberOK(string(v)) {
				bad = append(bad, slices.Clone(loc))
			}
		case map[string]any:
			for k, e := range v {
				loc = append(loc, k)
				walk(e)
				loc = loc[:len(loc)-1]
			}
		case []any:
			for i, e := range v {
				loc = append(loc, strconv.Itoa(i))
				walk(e)
				loc = loc[:len(loc)-1]
			}
		}
	}
	walk(v)
	slices.SortFunc(bad, compareLocations)
	return bad
}

// numberProblems describes the numbers badNumbers found, as BodyError lists problems.
func numberProblems(bad [][]string) (ps []string, more int) {
	if len(bad) > MaxProblems {
		bad, more = bad[:MaxProblems], len(bad)-MaxProblems
	}
	for _, loc := range bad {
		ps = append(ps, clip(pointer(loc)+": "+numberRange))
	}
	return ps, more
}

var numberRange = "number out of range: want at most " + strconv.Itoa(MaxNumberText) +
	" characters and an exponent from -" + strconv.Itoa(MaxExponent) + " to " + strconv.Itoa(MaxExponent)
