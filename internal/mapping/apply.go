package mapping

import (
	"cmp"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// entry is one compiled key and value.
type entry struct {
	key   Key
	canon string // the header name in http.Header's canonical form
	expr  Expr
}

// rank orders the actions as they are applied: removes, then overwrites, then appends.
func rank(a Action) int {
	switch a {
	case Remove:
		return 0
	case Overwrite:
		return 1
	}
	return 2
}

// compareEntries orders entries by action (removes, overwrites, appends), then location, then name.
func compareEntries(a, b entry) int {
	return cmp.Or(
		cmp.Compare(rank(a.key.Action), rank(b.key.Action)),
		cmp.Compare(a.key.Location, b.key.Location),
		strings.Compare(a.key.Name, b.key.Name),
	)
}

// compileEntries parses the keys and values of m, naming each problem with prefix and the key.
func compileEntries(m map[string]string, prefix string, request bool) ([]entry, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries := make([]entry, 0, len(keys))
	seen := make(map[Key]string, len(keys))
	for _, ks := range keys {
		value := m[ks]
		where := fmt.Sprintf("%s[%q]", prefix, ks)
		var k Key
		var err error
		if request {
			k, err = ParseRequestKey(ks)
		} else {
			k, err = ParseResponseKey(ks)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if other, ok := seen[k]; ok {
			return nil, fmt.Errorf("%s: %w", where, invalidf("maps the same %s as %q", k.Location, other))
		}
		seen[k] = ks
		e := entry{key: k}
		if k.Location == Header {
			e.canon = textproto.CanonicalMIMEHeaderKey(k.Name)
		}
		if k.Action == Remove {
			// "''" is how AWS's own tools write the empty value of a remove key.
			if value != "" && value != "''" {
				return nil, fmt.Errorf("%s: %w", where, invalidf("a remove key takes the value \"\", not %q", clip(value)))
			}
			entries = append(entries, e)
			continue
		}
		if request {
			e.expr, err = ParseRequestValue(value)
		} else {
			e.expr, err = ParseResponseValue(value)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if k.Location == StatusCode && len(e.expr.Refs()) == 0 {
			if _, ok := parseStatus(value); !ok {
				return nil, fmt.Errorf("%s: %w", where, invalidf("the status code %q is not a number from 100 to 599", clip(value)))
			}
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, compareEntries)
	return entries, nil
}

// applyEntry applies a header or query-string entry to h or q. It does nothing when the value is a
// single reference with no value, and nothing to the query string when q is nil.
func applyEntry(e *entry, h *http.Header, q *url.Values, src Source) {
	if e.key.Location == QueryString && q == nil {
		return
	}
	if e.key.Action == Remove {
		switch e.key.Location {
		case Header:
			delete(*h, e.canon)
		case QueryString:
			delete(*q, e.key.Name)
		}
		return
	}
	v, missing := e.expr.eval(src)
	if missing {
		return
	}
	switch e.key.Location {
	case Header:
		if *h == nil {
			*h = make(http.Header)
		}
		v = headerValue(v)
		if e.key.Action == Overwrite {
			(*h)[e.canon] = []string{v}
		} else {
			(*h)[e.canon] = append((*h)[e.canon], v)
		}
	case QueryString:
		if *q == nil {
			*q = make(url.Values)
		}
		if e.key.Action == Overwrite {
			(*q)[e.key.Name] = []string{v}
		} else {
			(*q)[e.key.Name] = append((*q)[e.key.Name], v)
		}
	}
}

// headerValue replaces the control characters that may not appear in a header value (all but tab)
// with spaces, so that a value read from a body cannot split a header.
func headerValue(v string) string {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			b := []byte(v)
			for j := i; j < len(b); j++ {
				if c := b[j]; (c < ' ' && c != '\t') || c == 0x7f {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return v
}

// parseStatus accepts a status code from 100 to 599, with optional spaces around it.
func parseStatus(s string) (int, bool) {
	s = strings.Trim(s, " \t")
	if len(s) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, false
	}
	return n, true
}

func allRefs(entries []entry, refs []Ref) []Ref {
	for i := range entries {
		refs = append(refs, entries[i].expr.Refs()...)
	}
	return refs
}

func entriesNeedBody(entries []entry) bool {
	for i := range entries {
		if entries[i].expr.needsBody() {
			return true
		}
	}
	return false
}

// RequestMap is a compiled requestParameters: how to rewrite the request sent to a backend. It is
// immutable and safe for concurrent use; a nil *RequestMap changes nothing.
type RequestMap struct {
	entries   []entry
	needsBody bool
}

// Request is the request being built for the backend, which a [RequestMap] rewrites. Header keys
// are in canonical form, as http.Header's methods keep them. Path is the path as the backend will
// see it, before escaping.
type Request struct {
	Header http.Header
	Query  url.Values
	Path   string
}

// CompileRequest parses an integration's requestParameters, from key (such as
// "overwrite:header.x-tenant", see [ParseRequestKey]) to value (see [ParseRequestValue]). A remove
// key takes the value "". Two keys that change the same parameter in the same way (such as
// "append:header.X-A" and "append:header.x-a") are refused. Errors name the key, as in
// requestParameters["overwrite:header.x"]: ..., and match [ErrInvalid].
func CompileRequest(m map[string]string) (*RequestMap, error) {
	entries, err := compileEntries(m, "requestParameters", true)
	if err != nil {
		return nil, err
	}
	return &RequestMap{entries: entries, needsBody: entriesNeedBody(entries)}, nil
}

// Apply rewrites req, reading the values of references from src, which must describe the client's
// request as received (not req, which Apply changes as it goes).
//
// The order is fixed: every remove, then every overwrite, then every append, each group ordered by
// location (headers, query string, path) and then by name. So "remove:header.x" with
// "append:header.x" sends only the appended value, and an overwrite and an append of the same
// header send both values.
//
// An overwrite sets the parameter to its value even when the value is empty, and an append adds it
// even when it is empty, except in one case: a value that is a single reference, such as
// $request.header.x-id, with nothing to read leaves the parameter as it is. The path is set with a
// leading / added when the value has none. Control characters other than tab in a header's value
// are replaced by spaces.
func (m *RequestMap) Apply(req *Request, src Source) {
	if m == nil || req == nil {
		return
	}
	for i := range m.entries {
		e := &m.entries[i]
		if e.key.Location != Path {
			applyEntry(e, &req.Header, &req.Query, src)
			continue
		}
		v, missing := e.expr.eval(src)
		if missing {
			continue
		}
		if !strings.HasPrefix(v, "/") {
			v = "/" + v
		}
		req.Path = v
	}
}

// NeedsBody reports whether a value reads the request body, which the gateway then has to keep.
func (m *RequestMap) NeedsBody() bool { return m != nil && m.needsBody }

// Refs returns every reference the values read, in the order they are applied, for checks such as
// whether each $request.path.<name> is a parameter of the route.
func (m *RequestMap) Refs() []Ref {
	if m == nil {
		return nil
	}
	return allRefs(m.entries, nil)
}

// ResponseMap is a compiled responseParameters: how to rewrite a backend's response, by its
// status code. It is immutable and safe for concurrent use; a nil *ResponseMap changes nothing.
type ResponseMap struct {
	byStatus  map[int][]entry
	needsBody bool
}

// Response is the response being sent to the client, which a [ResponseMap] rewrites. Header keys
// are in canonical form, as http.Header's methods keep them.
type Response struct {
	Status int
	Header http.Header
}

// CompileResponse parses an integration's responseParameters: for each status code of the backend
// ("200" to "599"), keys (see [ParseResponseKey]) and values (see [ParseResponseValue]). A remove
// key takes the value "", and an overwrite:statuscode value with no references must be a status
// code from 100 to 599. Errors name the status and the key, as in
// responseParameters["404"]["overwrite:statuscode"]: ..., and match [ErrInvalid].
func CompileResponse(byStatus map[string]map[string]string) (*ResponseMap, error) {
	statuses := make([]string, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	m := &ResponseMap{byStatus: make(map[int][]entry, len(byStatus))}
	for _, s := range statuses {
		status, err := strconv.Atoi(s)
		if err != nil || len(s) != 3 || status < 200 || status > 599 {
			return nil, fmt.Errorf("responseParameters[%q]: %w", s, invalidf("a key of responseParameters is a status code from 200 to 599"))
		}
		entries, err := compileEntries(byStatus[s], fmt.Sprintf("responseParameters[%q]", s), false)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			m.byStatus[status] = entries
			m.needsBody = m.needsBody || entriesNeedBody(entries)
		}
	}
	return m, nil
}

// Apply rewrites resp with the mappings for resp.Status, the status the backend answered with,
// reading the values of references from src, which must describe the backend's response as
// received (not resp, which Apply changes as it goes). The order and the handling of empty and
// missing values are as for [RequestMap.Apply]. An overwrite:statuscode whose value is not a status
// code from 100 to 599 is ignored.
func (m *ResponseMap) Apply(resp *Response, src Source) {
	if m == nil || resp == nil {
		return
	}
	entries := m.byStatus[resp.Status]
	status := resp.Status
	for i := range entries {
		e := &entries[i]
		if e.key.Location != StatusCode {
			applyEntry(e, &resp.Header, nil, src)
			continue
		}
		v, missing := e.expr.eval(src)
		if missing {
			continue
		}
		if n, ok := parseStatus(v); ok {
			status = n
		}
	}
	resp.Status = status
}

// NeedsBody reports whether a value reads the backend's response body, which the gateway then has
// to keep.
func (m *ResponseMap) NeedsBody() bool { return m != nil && m.needsBody }

// For reports whether any mapping applies to a backend response with this status.
func (m *ResponseMap) For(status int) bool {
	return m != nil && len(m.byStatus[status]) > 0
}

// Refs returns every reference the values read, ordered by status and then as they are applied.
func (m *ResponseMap) Refs() []Ref {
	if m == nil {
		return nil
	}
	statuses := make([]int, 0, len(m.byStatus))
	for s := range m.byStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	var refs []Ref
	for _, s := range statuses {
		refs = allRefs(m.byStatus[s], refs)
	}
	return refs
}
