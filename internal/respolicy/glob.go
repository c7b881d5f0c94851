package respolicy

import (
	"strings"
	"unicode/utf8"
)

// glob is a compiled IAM wildcard pattern: "*" matches any run of characters (none included), "?"
// exactly one character, and every other character itself.
//
// A pattern with stars is its pieces between them: the first must match at the start of the text,
// the last at its end, and the others in order in between. Each middle piece is taken at its
// leftmost place, which is safe because a piece always matches a fixed number of characters:
// ending as early as possible leaves the most room for the pieces after it. So matching never
// backtracks, and a pattern whose pieces have no "?" costs little more than a few strings.Index.
type glob struct {
	kind globKind
	// whole is the pattern when it has no star (globExact, globOne).
	whole piece
	// first and last are the pieces before the first star and after the last, and mids the
	// non-empty pieces between stars (globStars).
	first, last piece
	mids        []piece
}

type globKind uint8

const (
	// globExact: no wildcard, the text must equal whole.
	globExact globKind = iota
	// globOne: no star but a "?": whole must match all of the text.
	globOne
	// globAny: only stars, anything matches.
	globAny
	// globStars: first, mids and last.
	globStars
)

// piece is a part of a pattern without stars.
type piece struct {
	s string
	// q is set when s has a "?".
	q bool
}

func newPiece(s string) piece { return piece{s: s, q: strings.Contains(s, "?")} }

func compileGlob(pat string) glob {
	switch {
	case !strings.Contains(pat, "*"):
		if strings.Contains(pat, "?") {
			return glob{kind: globOne, whole: newPiece(pat)}
		}
		return glob{kind: globExact, whole: newPiece(pat)}
	case strings.Trim(pat, "*") == "":
		return glob{kind: globAny}
	}
	parts := strings.Split(pat, "*")
	g := glob{kind: globStars, first: newPiece(parts[0]), last: newPiece(parts[len(parts)-1])}
	for _, m := range parts[1 : len(parts)-1] {
		if m != "" {
			g.mids = append(g.mids, newPiece(m))
		}
	}
	return g
}

// match reports whether s matches g. It allocates nothing. Its time is linear in len(s) for
// pieces without "?", and at most proportional to len(s) times a piece's length for a middle
// piece with one.
func (g *glob) match(s string) bool {
	switch g.kind {
	case globExact:
		return s == g.whole.s
	case globOne:
		n, ok := g.whole.matchPrefix(s)
		return ok && n == len(s)
	case globAny:
		return true
	}
	n, ok := g.first.matchPrefix(s)
	if !ok {
		return false
	}
	rest := s[n:]
	if n, ok = g.last.matchSuffix(rest); !ok {
		return false
	}
	rest = rest[:len(rest)-n]
	for i := range g.mids {
		end := g.mids[i].index(rest)
		if end < 0 {
			return false
		}
		rest = rest[end:]
	}
	return true
}

// matchPrefix matches p at the start of s and returns the number of bytes it covers. "?" covers
// one UTF-8 character (one byte of invalid UTF-8).
func (p *piece) matchPrefix(s string) (int, bool) {
	if !p.q {
		return len(p.s), strings.HasPrefix(s, p.s)
	}
	i := 0
	for j := 0; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '?':
			if i == len(s) {
				return 0, false
			}
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		case i < len(s) && s[i] == c:
			i++
		default:
			return 0, false
		}
	}
	return i, true
}

// matchSuffix matches p at the end of s and returns the number of bytes it covers.
func (p *piece) matchSuffix(s string) (int, bool) {
	if !p.q {
		return len(p.s), strings.HasSuffix(s, p.s)
	}
	i := len(s)
	for j := len(p.s) - 1; j >= 0; j-- {
		switch c := p.s[j]; {
		case c == '?':
			if i == 0 {
				return 0, false
			}
			_, w := utf8.DecodeLastRuneInString(s[:i])
			i -= w
		case i > 0 && s[i-1] == c:
			i--
		default:
			return 0, false
		}
	}
	return len(s) - i, true
}

// index finds p's leftmost match in s and returns where it ends, or -1.
func (p *piece) index(s string) int {
	if !p.q {
		if i := strings.Index(s, p.s); i >= 0 {
			return i + len(p.s)
		}
		return -1
	}
	// Try each character's start: a star takes whole characters.
	for i := 0; ; {
		if n, ok := p.matchPrefix(s[i:]); ok {
			return i + n
		}
		if i == len(s) {
			return -1
		}
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
}
