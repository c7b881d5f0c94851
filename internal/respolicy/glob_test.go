package respolicy

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"", "", true},
		{"", "a", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"*", "", true},
		{"**", "anything/at:all", true},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a*b*c", "a-c-b-c", true},
		{"a*b*c", "acb", false},
		{"*aa*aa", "aaa", false},
		{"*aa*aa", "aaaa", true},
		{"/prod/GET/pets/*", "/prod/GET/pets/", true},
		{"/prod/GET/pets/*", "/prod/GET/pets", false},
		{"?", "é", true},
		{"?", "", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*?", "", false},
		{"*?", "x", true},
		{"v?/*", "v1/x", true},
		{"v?/*", "v10/x", false},
		{"*a?b*", "xxacbyy", true},
		{"*a?b*", "xxabyy", false},
		{"é*ü", "éxxü", true},
		{"a?*?b", "aéb", false},
		{"a?*?b", "aééb", true},
		{"*?é", "xé", true},
		{"*?é", "é", false},
		{"x*a?c*y", "xabcababcy", true},
		{"x*a?c*a?c*y", "xabcy", false},
		{"x*a?c*a?c*y", "xabcaxcy", true},
		{"*" + strings.Repeat("a", 50) + "?b", strings.Repeat("a", 200) + "xb", true},
	}
	for _, tt := range tests {
		g := compileGlob(tt.pat)
		if got := g.match(tt.s); got != tt.want {
			t.Errorf("compileGlob(%q).match(%q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// globRegexp is the pattern as a regular expression, the reference the fuzz target checks against.
func globRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteString(`(?s:.*)`)
		case '?':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// FuzzGlob checks the matcher against regular expressions on valid UTF-8.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"a*b?c", "axxbyc"}, {"*aa*aa", "aaaa"}, {"?*?", "é"}, {"/prod/*/x", "/prod/a/b/x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		if len(pat) > 64 || len(s) > 256 || !utf8.ValidString(pat) || !utf8.ValidString(s) {
			return
		}
		want := globRegexp(pat).MatchString(s)
		g := compileGlob(pat)
		if got := g.match(s); got != want {
			t.Errorf("compileGlob(%q).match(%q) = %v, want %v", pat, s, got, want)
		}
	})
}
