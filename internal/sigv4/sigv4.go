// Package sigv4 verifies AWS Signature Version 4 (AWS4-HMAC-SHA256) on incoming requests, so that an
// unmodified AWS SDK client signing for service "execute-api" can call Gatehouse: the @connections
// management API, and routes that require IAM authorization.
//
// A Verifier holds the access keys of a stack. Verify accepts a signature carried in the Authorization
// header or in a presigned query string (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
// X-Amz-SignedHeaders, X-Amz-Signature), rebuilds the canonical request from what arrived, and compares
// signatures in constant time. It returns the access key id that signed the request.
//
// # Path encoding
//
// For every service except S3, AWS signers escape the request path once more before signing it. The
// path they escape is the one they send, which is already percent-encoded. So the canonical URI is the
// received path with every byte other than A–Z, a–z, 0–9, '-', '.', '_', '~' and '/' written as %XX
// (upper-case hex), '%' included. The path is not decoded, cleaned or normalised first:
//
//	received:  /prod/@connections/R1kmxc2VNjMCFIA%3D
//	canonical: /prod/%40connections/R1kmxc2VNjMCFIA%253D
//
// An empty path is "/". Callers must pass the path exactly as received (before any decoding or
// cleaning), because any change to it changes the canonical request.
//
// # Query
//
// The query is decoded as a form ('+' is a space), and each key and value re-encoded with RFC 3986
// unreserved characters kept and everything else as %XX; pairs are sorted by key, then by value. In a
// presigned request X-Amz-Signature is left out.
//
// # Errors
//
// Verify's errors wrap one of ErrMissing, ErrMalformed, ErrUnknownKey, ErrExpired, ErrScope or
// ErrSignature. They are meant for logs and tests; a caller answers every one of them with the same 403.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultRegion  = "us-east-1"
	DefaultService = "execute-api"
	DefaultWindow  = 5 * time.Minute
)

// MaxPresignExpiry is the longest X-Amz-Expires a presigned request may carry: seven days.
const MaxPresignExpiry = 7 * 24 * time.Hour

const (
	algorithm  = "AWS4-HMAC-SHA256"
	terminator = "aws4_request"
	// amzDateLayout is the ISO 8601 basic format of X-Amz-Date.
	amzDateLayout = "20060102T150405Z"
	// scopeDateLayout is the date of the credential scope.
	scopeDateLayout  = "20060102"
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	maxCachedKeys    = 256
	signatureHexSize = 2 * sha256.Size
)

// Errors that Verify's errors wrap.
var (
	// ErrMissing means the request carries no signature at all.
	ErrMissing = errors.New("no signature")
	// ErrMalformed means the signature, its parameters or the request cannot be read as SigV4.
	ErrMalformed = errors.New("malformed signature")
	// ErrUnknownKey means the access key id is not one of the configured keys.
	ErrUnknownKey = errors.New("unknown access key")
	// ErrExpired means the signing time is outside the allowed clock skew, or a presigned request
	// has expired.
	ErrExpired = errors.New("signature expired")
	// ErrScope means the credential scope names another date, region or service.
	ErrScope = errors.New("wrong credential scope")
	// ErrSignature means the signature does not match the request, or the body does not match its
	// declared hash.
	ErrSignature = errors.New("signature mismatch")
)

// Credentials are one access key pair configured for a stack.
type Credentials struct{ AccessKeyID, SecretAccessKey string }

// Config configures a Verifier. The zero value of every field but Keys is replaced by its default.
type Config struct {
	Keys    []Credentials    // at least one
	Region  string           // default "us-east-1"
	Service string           // default "execute-api"
	Window  time.Duration    // allowed clock skew of X-Amz-Date / presign time, default 5 * time.Minute
	Now     func() time.Time // default time.Now
}

// Validate reports whether the configuration can build a Verifier.
func (c Config) Validate() error {
	if len(c.Keys) == 0 {
		return errors.New("sigv4: no access keys")
	}
	seen := make(map[string]bool, len(c.Keys))
	for i, k := range c.Keys {
		switch {
		case k.AccessKeyID == "" || k.SecretAccessKey == "":
			return fmt.Errorf("sigv4: key %d: empty access key id or secret", i)
		case strings.ContainsAny(k.AccessKeyID, "/ ,="):
			return fmt.Errorf("sigv4: key %d: access key id %q contains '/', ' ', ',' or '='", i, k.AccessKeyID)
		case seen[k.AccessKeyID]:
			return fmt.Errorf("sigv4: key %d: duplicate access key id %q", i, k.AccessKeyID)
		}
		seen[k.AccessKeyID] = true
	}
	if c.Window < 0 {
		return fmt.Errorf("sigv4: negative window %v", c.Window)
	}
	return nil
}

// Verifier checks SigV4 signatures against a fixed set of keys. It is safe for concurrent use.
type Verifier struct {
	secrets map[string]string // access key id → secret
	region  string
	service string
	window  time.Duration
	now     func() time.Time

	mu   sync.Mutex
	keys map[string][]byte // "id/date/region/service" → derived signing key
}

// New returns a Verifier for cfg. It does no I/O.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{
		secrets: make(map[string]string, len(cfg.Keys)),
		region:  cfg.Region,
		service: cfg.Service,
		window:  cfg.Window,
		now:     cfg.Now,
		keys:    make(map[string][]byte),
	}
	for _, k := range cfg.Keys {
		v.secrets[k.AccessKeyID] = k.SecretAccessKey
	}
	if v.region == "" {
		v.region = DefaultRegion
	}
	if v.service == "" {
		v.service = DefaultService
	}
	if v.window == 0 {
		v.window = DefaultWindow
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Request is what the verifier needs of an HTTP request, independent of the HTTP library.
type Request struct {
	Method   string
	RawPath  string      // the path exactly as received, still percent-encoded (e.g. "/chat/@connections/abc%3D")
	RawQuery string      // exactly as received, without '?'
	Host     string      // the Host header
	Header   http.Header // all headers (canonical keys)
	Body     []byte      // the body (used to check X-Amz-Content-Sha256, or hashed when that header is absent)
}

// signed is what a request says about its own signature, from either the header or the query.
type signed struct {
	presigned     bool
	keyID         string
	scopeDate     string
	scopeRegion   string
	scopeService  string
	scopeTerm     string
	signedHeaders []string
	signedList    string // SignedHeaders exactly as sent
	signature     []byte
	amzDate       string // the signing time in amzDateLayout
	date          time.Time
	expires       time.Duration // presigned only; 0 when X-Amz-Expires is absent
	query         url.Values
}

// Verify checks the request's signature: from the Authorization header (AWS4-HMAC-SHA256
// Credential=..., SignedHeaders=..., Signature=...) or a presigned query (X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature). It returns the
// access key id that signed it, or an error wrapping ErrMissing (no signature at all), ErrMalformed,
// ErrUnknownKey, ErrExpired (outside the window / presign expiry), ErrScope (wrong region/service/date
// in the credential scope), ErrSignature (mismatch). Errors are for logs and tests; callers answer 403
// {"message":"Forbidden"} without detail.
//
// # Notes
//
//   - SignedHeaders must be lower-case, sorted, without duplicates, and include "host"; a header
//     signature must also sign "x-amz-date" (or "date" when X-Amz-Date is absent).
//   - A presigned request without X-Amz-Expires is held to the clock-skew window like a header
//     signature. With it, it is valid from X-Amz-Date minus the window until X-Amz-Date plus
//     X-Amz-Expires, which may not exceed MaxPresignExpiry.
//   - The payload hash is X-Amz-Content-Sha256 when present ("UNSIGNED-PAYLOAD" or the hex SHA-256 of
//     the body, checked against Body), else the hex SHA-256 of Body.
//   - A signed request whose query does not parse as a form (a ';', a bad %-escape) is malformed:
//     signers leave such pairs out of the canonical query, so they would go unsigned.
func (v *Verifier) Verify(r Request) (string, error) {
	s, err := parse(r)
	if err != nil {
		return "", err
	}
	secret, ok := v.secrets[s.keyID]
	if !ok {
		return "", fmt.Errorf("sigv4: access key %q: %w", s.keyID, ErrUnknownKey)
	}
	if s.scopeDate != s.amzDate[:len(scopeDateLayout)] || s.scopeRegion != v.region ||
		s.scopeService != v.service || s.scopeTerm != terminator {
		return "", fmt.Errorf("sigv4: credential scope %s/%s/%s/%s at %s: %w",
			s.scopeDate, s.scopeRegion, s.scopeService, s.scopeTerm, s.amzDate, ErrScope)
	}
	if err := v.checkTime(s); err != nil {
		return "", err
	}
	payloadHash, err := payloadHash(r)
	if err != nil {
		return "", err
	}

	canonical := canonicalRequest(r, s, payloadHash)
	sum := sha256.Sum256([]byte(canonical))
	scope := s.scopeDate + "/" + v.region + "/" + v.service + "/" + terminator
	var sts strings.Builder
	sts.Grow(len(algorithm) + len(s.amzDate) + len(scope) + 2*sha256.Size + 3)
	sts.WriteString(algorithm)
	sts.WriteByte('\n')
	sts.WriteString(s.amzDate)
	sts.WriteByte('\n')
	sts.WriteString(scope)
	sts.WriteByte('\n')
	sts.WriteString(hex.EncodeToString(sum[:]))

	want := hmacSHA256(v.signingKey(s.keyID, secret, s.scopeDate), []byte(sts.String()))
	if !hmac.Equal(want, s.signature) {
		return "", fmt.Errorf("sigv4: access key %q: %w", s.keyID, ErrSignature)
	}
	return s.keyID, nil
}

func (v *Verifier) checkTime(s *signed) error {
	now := v.now()
	if s.date.After(now.Add(v.window)) {
		return fmt.Errorf("sigv4: signed at %s, more than %v after now: %w", s.amzDate, v.window, ErrExpired)
	}
	switch {
	case !s.presigned || s.expires == 0:
		if s.date.Before(now.Add(-v.window)) {
			return fmt.Errorf("sigv4: signed at %s, more than %v before now: %w", s.amzDate, v.window, ErrExpired)
		}
	case s.expires > MaxPresignExpiry:
		return fmt.Errorf("sigv4: X-Amz-Expires %v exceeds %v: %w", s.expires, MaxPresignExpiry, ErrExpired)
	case now.After(s.date.Add(s.expires)):
		return fmt.Errorf("sigv4: presigned at %s for %v: %w", s.amzDate, s.expires, ErrExpired)
	}
	return nil
}

// signingKey returns the derived key of one access key for a date, from the cache when it can.
func (v *Verifier) signingKey(id, secret, date string) []byte {
	ck := id + "/" + date + "/" + v.region + "/" + v.service
	v.mu.Lock()
	k, ok := v.keys[ck]
	v.mu.Unlock()
	if ok {
		return k
	}
	k = hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(v.region))
	k = hmacSHA256(k, []byte(v.service))
	k = hmacSHA256(k, []byte(terminator))
	v.mu.Lock()
	if len(v.keys) >= maxCachedKeys {
		// Only verified-looking scopes reach here, so a full cache means many keys over many
		// days; starting again is simpler than tracking age and costs a few HMACs.
		clear(v.keys)
	}
	v.keys[ck] = k
	v.mu.Unlock()
	return k
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

// parse reads the signature parameters from the Authorization header or the query.
func parse(r Request) (*signed, error) {
	// ParseQuery keeps the pairs it can read; they are enough to tell whether the request is signed.
	query, qerr := url.ParseQuery(r.RawQuery)
	auth := r.Header.Values("Authorization")
	presigned := query.Has("X-Amz-Algorithm") || query.Has("X-Amz-Credential") || query.Has("X-Amz-Signature")
	switch {
	case len(auth) == 0 && !presigned:
		return nil, fmt.Errorf("sigv4: %w", ErrMissing)
	case qerr != nil:
		// The signer drops pairs it cannot parse, which would leave them unsigned: refuse them.
		return nil, fmt.Errorf("sigv4: query: %v: %w", qerr, ErrMalformed)
	case len(auth) > 0 && presigned:
		return nil, fmt.Errorf("sigv4: both an Authorization header and a presigned query: %w", ErrMalformed)
	case len(auth) > 1:
		return nil, fmt.Errorf("sigv4: %d Authorization headers: %w", len(auth), ErrMalformed)
	case len(auth) == 1:
		return parseHeader(r, auth[0], query)
	default:
		return parseQuery(query)
	}
}

func parseHeader(r Request, auth string, query url.Values) (*signed, error) {
	rest, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return nil, fmt.Errorf("sigv4: Authorization is not %s: %w", algorithm, ErrMalformed)
	}
	var credential, signedHeaders, signature string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("sigv4: Authorization component %q: %w", part, ErrMalformed)
		}
		var i int
		switch name {
		case "Credential":
			i, credential = 0, value
		case "SignedHeaders":
			i, signedHeaders = 1, value
		case "Signature":
			i, signature = 2, value
		default:
			return nil, fmt.Errorf("sigv4: Authorization component %q: %w", name, ErrMalformed)
		}
		if seen[i] {
			return nil, fmt.Errorf("sigv4: Authorization repeats %s: %w", name, ErrMalformed)
		}
		seen[i] = true
	}
	if seen != [3]bool{true, true, true} {
		return nil, fmt.Errorf("sigv4: Authorization lacks Credential, SignedHeaders or Signature: %w", ErrMalformed)
	}
	s := &signed{query: query}
	if err := s.setCredential(credential); err != nil {
		return nil, err
	}
	if err := s.setSignedHeaders(signedHeaders); err != nil {
		return nil, err
	}
	if err := s.setSignature(signature); err != nil {
		return nil, err
	}

	// The signing time: X-Amz-Date, or Date when there is no X-Amz-Date; either must be signed.
	switch dates := r.Header.Values("X-Amz-Date"); {
	case len(dates) > 1:
		return nil, fmt.Errorf("sigv4: %d X-Amz-Date headers: %w", len(dates), ErrMalformed)
	case len(dates) == 1:
		if !s.signs("x-amz-date") {
			return nil, fmt.Errorf("sigv4: x-amz-date is not signed: %w", ErrMalformed)
		}
		if err := s.setDate(dates[0]); err != nil {
			return nil, err
		}
	default:
		httpDates := r.Header.Values("Date")
		if len(httpDates) != 1 || !s.signs("date") {
			return nil, fmt.Errorf("sigv4: no signed X-Amz-Date or Date header: %w", ErrMalformed)
		}
		t, err := http.ParseTime(httpDates[0])
		if err != nil {
			return nil, fmt.Errorf("sigv4: Date %q: %w", httpDates[0], ErrMalformed)
		}
		s.date = t.UTC()
		s.amzDate = s.date.Format(amzDateLayout)
	}
	return s, nil
}

func parseQuery(query url.Values) (*signed, error) {
	get := func(name string) (string, error) {
		vs := query[name]
		if len(vs) != 1 {
			return "", fmt.Errorf("sigv4: query has %d %s: %w", len(vs), name, ErrMalformed)
		}
		return vs[0], nil
	}
	s := &signed{presigned: true, query: query}
	alg, err := get("X-Amz-Algorithm")
	if err != nil {
		return nil, err
	}
	if alg != algorithm {
		return nil, fmt.Errorf("sigv4: X-Amz-Algorithm %q: %w", alg, ErrMalformed)
	}
	for _, p := range []struct {
		name string
		set  func(string) error
	}{
		{"X-Amz-Credential", s.setCredential},
		{"X-Amz-SignedHeaders", s.setSignedHeaders},
		{"X-Amz-Signature", s.setSignature},
		{"X-Amz-Date", s.setDate},
	} {
		v, err := get(p.name)
		if err != nil {
			return nil, err
		}
		if err := p.set(v); err != nil {
			return nil, err
		}
	}
	if _, ok := query["X-Amz-Expires"]; ok {
		v, err := get("X-Amz-Expires")
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("sigv4: X-Amz-Expires %q: %w", v, ErrMalformed)
		}
		s.expires = time.Duration(n) * time.Second
	}
	return s, nil
}

// setCredential reads "AKID/20240101/us-east-1/execute-api/aws4_request".
func (s *signed) setCredential(c string) error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[0] == "" {
		return fmt.Errorf("sigv4: credential %q: %w", c, ErrMalformed)
	}
	s.keyID, s.scopeDate, s.scopeRegion, s.scopeService, s.scopeTerm = parts[0], parts[1], parts[2], parts[3], parts[4]
	return nil
}

func (s *signed) setSignedHeaders(list string) error {
	names := strings.Split(list, ";")
	for i, n := range names {
		if n == "" || strings.ToLower(n) != n || strings.ContainsAny(n, " \t\r\n:") || (i > 0 && names[i-1] >= n) {
			return fmt.Errorf("sigv4: SignedHeaders %q: not lower-case, sorted and unique: %w", list, ErrMalformed)
		}
	}
	s.signedHeaders, s.signedList = names, list
	if !s.signs("host") {
		return fmt.Errorf("sigv4: SignedHeaders %q lacks host: %w", list, ErrMalformed)
	}
	return nil
}

func (s *signed) signs(name string) bool {
	i := sort.SearchStrings(s.signedHeaders, name)
	return i < len(s.signedHeaders) && s.signedHeaders[i] == name
}

func (s *signed) setSignature(sig string) error {
	b, err := hex.DecodeString(sig)
	if err != nil || len(sig) != signatureHexSize {
		return fmt.Errorf("sigv4: signature is not %d hex digits: %w", signatureHexSize, ErrMalformed)
	}
	s.signature = b
	return nil
}

func (s *signed) setDate(d string) error {
	t, err := time.Parse(amzDateLayout, d)
	if err != nil || len(d) != len(amzDateLayout) {
		return fmt.Errorf("sigv4: X-Amz-Date %q: %w", d, ErrMalformed)
	}
	s.date, s.amzDate = t, d
	return nil
}

// payloadHash returns the payload hash of the canonical request.
func payloadHash(r Request) (string, error) {
	sum := sha256.Sum256(r.Body)
	hashes := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(hashes) == 0:
		return hex.EncodeToString(sum[:]), nil
	case len(hashes) > 1:
		return "", fmt.Errorf("sigv4: %d X-Amz-Content-Sha256 headers: %w", len(hashes), ErrMalformed)
	case hashes[0] == unsignedPayload:
		return unsignedPayload, nil
	}
	declared, err := hex.DecodeString(hashes[0])
	if err != nil || len(declared) != sha256.Size {
		return "", fmt.Errorf("sigv4: X-Amz-Content-Sha256 %q: %w", hashes[0], ErrMalformed)
	}
	if !hmac.Equal(declared, sum[:]) {
		return "", fmt.Errorf("sigv4: body does not match X-Amz-Content-Sha256: %w", ErrSignature)
	}
	return hashes[0], nil
}

// canonicalRequest builds the canonical request of r as signed by s.
func canonicalRequest(r Request, s *signed, payloadHash string) string {
	var b strings.Builder
	b.Grow(len(r.Method) + 3*len(r.RawPath) + 3*len(r.RawQuery) + 64*len(s.signedHeaders) + len(s.signedList) + len(payloadHash) + 8)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	writeCanonicalURI(&b, r.RawPath)
	b.WriteByte('\n')
	writeCanonicalQuery(&b, s.query, s.presigned)
	b.WriteByte('\n')
	for _, name := range s.signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		writeHeaderValue(&b, r, name)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(s.signedList)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// writeCanonicalURI escapes the received path once more, keeping '/'; see the package comment.
func writeCanonicalURI(b *strings.Builder, path string) {
	if path == "" {
		b.WriteByte('/')
		return
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c == '/' || unreserved(c) {
			b.WriteByte(c)
		} else {
			writeEscaped(b, c)
		}
	}
}

func writeCanonicalQuery(b *strings.Builder, query url.Values, presigned bool) {
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(query))
	for k, vs := range query {
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		ek := escape(k)
		for _, v := range vs {
			pairs = append(pairs, pair{ek, escape(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
}

// writeHeaderValue writes the canonical value of one signed header: its values trimmed, runs of
// spaces collapsed, joined by ','.
func writeHeaderValue(b *strings.Builder, r Request, name string) {
	var values []string
	switch name {
	case "host":
		host := r.Host
		if host == "" {
			host = r.Header.Get("Host")
		}
		values = []string{host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && len(r.Body) > 0 {
			// Some servers take Content-Length out of the headers; the body says the same.
			values = []string{strconv.Itoa(len(r.Body))}
		}
	default:
		values = r.Header.Values(name)
	}
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		v = strings.TrimSpace(v)
		space := false
		for j := 0; j < len(v); j++ {
			c := v[j]
			if c == ' ' {
				if space {
					continue
				}
				space = true
			} else {
				space = false
			}
			b.WriteByte(c)
		}
	}
}

// escape percent-encodes every byte of s but the RFC 3986 unreserved characters.
func escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b.WriteByte(c)
		} else {
			writeEscaped(&b, c)
		}
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func writeEscaped(b *strings.Builder, c byte) {
	const hexDigits = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&15])
}
