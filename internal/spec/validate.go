package spec

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// MsgOnlyWebSocket is the message for a websocket-only key in an http API.
const MsgOnlyWebSocket = "only for websocket APIs (type: websocket); remove it from this http API"

// MsgOnlyHTTPCORS is the message for cors in a WebSocket API.
const MsgOnlyHTTPCORS = "only for http APIs: browsers make no CORS preflight requests for WebSocket connections; remove it from this websocket API"

// IndexMark starts the path segment of a list index (see Index); a map key cannot hold it in
// practice.
const IndexMark = "\x00#"

// Index returns the path segment of the i-th item of a list; FormatPath writes it as [i].
func Index(i int) string { return IndexMark + strconv.Itoa(i) }

func sub(path []string, keys ...string) []string {
	return append(slices.Clip(path), keys...)
}

// Validation. The checker finds every problem, in a fixed order, so that a caller that reports one
// at a time (the stack file's parser) reports the same one first every time.

// FieldError is one problem with a value: where it is and what is wrong.
type FieldError struct {
	// Path is the key path of the value, such as `functions.hello.timeout` or
	// `apis.web.routes["GET /hello"].integration.target`.
	Path string `json:"path"`
	// Message says what is wrong and what would be right.
	Message string `json:"message"`
	// Keys are Path's segments, a list index written as [Index] writes it.
	Keys []string `json:"-"`
	// AtKey says the problem is the key itself (a name), not its value.
	AtKey bool `json:"-"`
}

// Error implements error: "PATH: MESSAGE".
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errors is a list of problems; nil when there are none.
type Errors []FieldError

// Error implements error: one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when it is empty.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

type checkErr struct {
	path  []string
	atKey bool // the problem is the key itself (a name), not its value
	msg   string
}

// Order is the order in which a stack's functions, APIs and usage plans are checked (and so their
// problems listed); a parser passes file order. Names missing from it are checked after, sorted.
type Order struct {
	Functions, APIs, UsagePlans []string
}

// Env is what an API refers to outside itself: the functions its routes and authorizers may name,
// and whether the stack has usage plans (which API keys belong to).
type Env struct {
	// HasFunction reports whether a function of this name exists.
	HasFunction func(name string) bool
	// FunctionNames lists the functions for messages (may be partial).
	FunctionNames []string
	// UsagePlans says the stack has at least one usage plan.
	UsagePlans bool
}

// EnvOf returns the Env of the APIs of s.
func EnvOf(s *Stack) Env {
	return Env{
		HasFunction:   func(name string) bool { _, ok := s.Functions[name]; return ok },
		FunctionNames: slices.Sorted(maps.Keys(s.Functions)),
		UsagePlans:    len(s.UsagePlans) > 0,
	}
}

type checker struct {
	env  Env
	errs Errors
}

func (c *checker) add(e *checkErr) {
	if e != nil {
		c.errs = append(c.errs, FieldError{Path: FormatPath(e.path), Message: e.msg, Keys: e.path, AtKey: e.atKey})
	}
}

func errf(path []string, atKey bool, format string, args ...any) *checkErr {
	return &checkErr{path: path, atKey: atKey, msg: fmt.Sprintf(format, args...)}
}

// inOrder returns the keys of m: those of first that are keys of m, then the rest sorted.
func inOrder[V any](m map[string]V, first []string) []string {
	out := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, k := range first {
		if _, ok := m[k]; ok && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// Validate checks every value of s: names, ranges, references from routes to functions and
// authorizers, that there is an API and that no two APIs share a host and mount. It does not touch
// the file system: function sources must be absolute and their Kind set. It returns every problem,
// or nil.
func (s *Stack) Validate() Errors { return s.ValidateInOrder(Order{}) }

// ValidateInOrder is Validate, checking functions, APIs and usage plans in the order given.
func (s *Stack) ValidateInOrder(o Order) Errors {
	c := &checker{env: EnvOf(s)}
	if s.Version != SchemaVersion {
		c.add(errf([]string{"version"}, false, "version %d is not supported; this Gatehouse reads version %d", s.Version, SchemaVersion))
		return c.errs
	}
	if !validStackName(s.Name) {
		c.add(errf([]string{"name"}, false, "%s is not a valid stack name: want 1 to 63 lower-case letters, digits and -, starting with a letter or digit", yamlnode.QuoteShort(s.Name)))
	}
	c.add(checkIAM(s.IAM))
	for _, name := range inOrder(s.UsagePlans, o.UsagePlans) {
		c.add(checkUsagePlan(name, s.UsagePlans[name]))
	}
	for _, name := range inOrder(s.Functions, o.Functions) {
		c.checkFunction(name, s.Functions[name])
	}
	scheduled := false
	for _, f := range s.Functions {
		scheduled = scheduled || len(f.Schedules) > 0 || len(f.Events) > 0
	}
	if len(s.APIs) == 0 && !scheduled {
		// A stack of scheduled functions (or of functions fed by subjects) needs no API; any other
		// stack would serve nothing.
		c.add(errf([]string{"apis"}, true, "stack defines no apis (and no function has schedules): it would serve nothing"))
	}
	mounts := map[[2]string]string{}
	for _, name := range inOrder(s.APIs, o.APIs) {
		api := s.APIs[name]
		c.checkAPI([]string{"apis", name}, name, api)
		if other := MountClash(mounts, name, api); other != "" {
			c.add(errf([]string{"apis", name, "mount"}, false, "%s", mountClashMsg(other, name, api)))
		}
	}
	c.checkDomains(s)
	return c.errs
}

// MountClash records api's host and mount in seen (host and mount → API name) and returns the name
// of an API already there with the same host and mount, or "".
func MountClash(seen map[[2]string]string, name string, api API) string {
	hm := [2]string{api.Host, api.Mount}
	if other, ok := seen[hm]; ok && other != name {
		return other
	}
	seen[hm] = name
	return ""
}

func mountClashMsg(other, name string, api API) string {
	where := "any host"
	if api.Host != "" {
		where = "host " + api.Host
	}
	return fmt.Sprintf("APIs %s and %s are both mounted at %s on %s; give them different mounts or hosts", other, name, api.Mount, where)
}

// Validate checks the API named name, on its own, against env: every problem, with paths relative
// to the API (such as `routes["GET /hello"].integration.target`), or nil.
func (a *API) Validate(name string, env Env) Errors {
	c := &checker{env: env}
	c.checkAPI(nil, name, *a)
	return c.errs
}

// FunctionsEnv is an Env whose functions are names.
func FunctionsEnv(names []string, usagePlans bool) Env {
	sorted := slices.Sorted(slices.Values(names))
	return Env{
		HasFunction:   func(n string) bool { _, ok := slices.BinarySearch(sorted, n); return ok },
		FunctionNames: sorted,
		UsagePlans:    usagePlans,
	}
}

func checkIAM(iam IAM) *checkErr {
	path := []string{"iam"}
	if !validRegion(iam.Region) {
		return errf(sub(path, "region"), false, "%s is not a region name: want lower-case letters, digits and -, such as %s (at most %d characters)",
			yamlnode.QuoteShort(iam.Region), DefaultRegion, MaxRegionLength)
	}
	if len(iam.AccountID) != 12 || !allIn(iam.AccountID, func(r rune) bool { return r >= '0' && r <= '9' }) {
		return errf(sub(path, "accountId"), false, "%s is not an account id: want twelve digits, such as %s",
			yamlnode.QuoteShort(iam.AccountID), DefaultAccountID)
	}
	ids := make(map[string]bool, len(iam.AccessKeys))
	for i, k := range iam.AccessKeys {
		kp := sub(path, "accessKeys", Index(i))
		// The ID is not quoted: a secret written in the wrong place must not be shown.
		if !validAccessKeyID(k.ID) {
			return errf(sub(kp, "id"), false, "not a valid access key ID: want %d to %d upper-case letters and digits, such as AKIAIOSFODNN7EXAMPLE (the value is not shown)",
				MinAccessKeyIDLength, MaxAccessKeyIDLength)
		}
		if ids[k.ID] {
			return errf(sub(kp, "id"), false, "the access key %s is listed twice", k.ID)
		}
		ids[k.ID] = true
		if msg := CheckSecret(k.Secret); msg != "" {
			return errf(sub(kp, "secret"), false, "the secret %s", msg)
		}
	}
	return nil
}

// checkSecret checks a secret access key; the message, which follows "the secret", never quotes it.
func CheckSecret(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n < MinSecretLength || n > MaxSecretLength:
		return fmt.Sprintf("has %d characters; want %d to %d (the value is not shown)", n, MinSecretLength, MaxSecretLength)
	case !allIn(s, func(r rune) bool { return r > ' ' && r < 0x7f }):
		return "holds spaces, control or non-ASCII characters; want printable ASCII (the value is not shown)"
	}
	return ""
}

func validAccessKeyID(id string) bool {
	return len(id) >= MinAccessKeyIDLength && len(id) <= MaxAccessKeyIDLength &&
		allIn(id, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' })
}

// validRegion reports whether r looks like a region name: lower-case letters, digits and -,
// starting with a letter and not ending with -.
func validRegion(r string) bool {
	if r == "" || len(r) > MaxRegionLength || r[0] < 'a' || r[0] > 'z' || r[len(r)-1] == '-' {
		return false
	}
	return allIn(r, func(c rune) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' })
}

func (c *checker) checkAPI(path []string, name string, api API) {
	if !validName(name, 128, false) {
		// In a stack the name is the API's key; an API checked on its own is given its name.
		at, atKey := path, true
		if path == nil {
			at, atKey = []string{"name"}, false
		}
		c.add(errf(at, atKey, "%s is not a valid API name: want 1 to 128 letters, digits, - and _", yamlnode.QuoteShort(name)))
		return
	}
	if api.Name != name {
		c.add(errf(path, true, "Name %q differs from the map key", api.Name))
		return
	}
	var ws bool
	switch api.Type {
	case APITypeHTTP, APITypeREST:
		if api.RouteSelectionExpression != "" {
			c.add(errf(sub(path, "routeSelectionExpression"), true, "%s", MsgOnlyWebSocket))
		}
		if api.WebSocket != nil {
			c.add(errf(sub(path, "limits"), true, "%s", MsgOnlyWebSocket))
		}
	case APITypeWebSocket:
		ws = true
	default:
		c.add(errf(sub(path, "type"), false, "unknown API type %s: want %q, %q or %q", yamlnode.QuoteShort(api.Type), APITypeHTTP, APITypeREST, APITypeWebSocket))
		return
	}
	c.checkREST(path, api)
	if msg := checkMount(api.Mount); msg != "" {
		c.add(errf(sub(path, "mount"), false, "%s", msg))
	}
	if msg := checkHost(api.Host); msg != "" {
		c.add(errf(sub(path, "host"), false, "%s", msg))
	}
	if api.CORS != nil {
		if ws {
			c.add(errf(sub(path, "cors"), true, "%s", MsgOnlyHTTPCORS))
		} else {
			c.add(checkCORS(sub(path, "cors"), api.CORS))
		}
	}
	for _, an := range slices.Sorted(maps.Keys(api.Authorizers)) {
		c.add(c.checkAuthorizer(sub(path, "authorizers", an), an, api.Authorizers[an], api.Type))
	}
	if len(api.Stages) == 0 {
		c.add(errf(sub(path, "stages"), true, "no stages (omit stages: to get the %s stage)", DefaultStage))
	}
	routeKeys := make([]string, len(api.Routes))
	for i, r := range api.Routes {
		routeKeys[i] = r.Key
	}
	for _, sn := range slices.Sorted(maps.Keys(api.Stages)) {
		c.add(checkStage(sub(path, "stages", sn), sn, api.Stages[sn], routeKeys))
	}
	if ws {
		if msg := checkRouteSelection(api.RouteSelectionExpression); msg != "" {
			c.add(errf(sub(path, "routeSelectionExpression"), false, "%s", msg))
		}
		c.add(checkWSLimits(sub(path, "limits"), api.WebSocket))
	}
	routesPath := sub(path, "routes")
	if len(api.Routes) == 0 {
		c.add(errf(routesPath, true, "the API has no routes"))
	}
	if len(api.Routes) > MaxRoutesPerAPI {
		c.add(errf(routesPath, true, "more than %d routes in one API", MaxRoutesPerAPI))
	}
	keys := make(map[string]bool, len(api.Routes))
	patterns := map[string]string{}
	for _, r := range api.Routes {
		rp := sub(routesPath, r.Key)
		if keys[r.Key] {
			c.add(errf(rp, true, "duplicate route"))
			continue
		}
		keys[r.Key] = true
		if !ws {
			if msg := CheckRouteKey(r.Key); msg != "" {
				c.add(errf(rp, true, "%s", msg))
				continue
			}
			if k, err := ParseRouteKey(r.Key); err == nil {
				if other, ok := patterns[k.Pattern()]; ok {
					c.add(errf(rp, true, "matches the same requests as the route %s (they differ only in parameter names)", yamlnode.QuoteShort(other)))
					continue
				}
				patterns[k.Pattern()] = r.Key
			}
			if r.RouteResponse {
				c.add(errf(sub(rp, "routeResponse"), true, "%s", MsgOnlyWebSocket))
			}
		} else {
			if msg := checkWSRouteKey(r.Key); msg != "" {
				c.add(errf(rp, true, "%s", msg))
				continue
			}
			if r.RouteResponse && (r.Key == RouteConnect || r.Key == RouteDisconnect) {
				c.add(errf(sub(rp, "routeResponse"), false, "%s routes cannot send a route response: the $connect response decides the handshake, and after $disconnect the client is gone", r.Key))
			}
		}
		c.add(c.checkIntegration(sub(rp, "integration"), r.Key, r.Integration, api.Type))
		c.add(c.checkRouteControls(rp, r, api))
		c.add(c.checkRESTRoute(rp, r, api))
	}
}

// checkRouteSelection checks a WebSocket API's route selection expression.
func checkRouteSelection(expr string) string {
	switch expr {
	case RouteSelectionAlwaysDefault:
		return ""
	case RouteDefault:
		return `"$default" is not a route selection expression: write \$default, with the backslash, to send every message to the $default route`
	}
	if rest, ok := strings.CutPrefix(expr, RouteSelectionBodyPrefix); ok {
		valid := true
		for _, name := range strings.Split(rest, ".") {
			valid = valid && validName(name, len(name), true)
		}
		if valid {
			return ""
		}
	}
	return fmt.Sprintf(`%s is not a supported route selection expression: want $request.body.NAME, where NAME is a field of the JSON message (letters, digits and _; nested fields joined by dots, as in $request.body.meta.action), or \$default to send every message to the $default route; composite expressions such as ${request.body.a}/${request.body.b} are not supported`,
		yamlnode.QuoteShort(expr))
}

// checkWSRouteKey checks a WebSocket route key.
func checkWSRouteKey(key string) string {
	predefined := []string{RouteConnect, RouteDisconnect, RouteDefault}
	const want = "a websocket API's route keys are $connect, $disconnect, $default and custom keys, which are matched against the value the routeSelectionExpression picks from each message, such as sendmessage"
	n := utf8.RuneCountInString(key)
	switch {
	case slices.Contains(predefined, key):
		return ""
	case strings.HasPrefix(key, "$"):
		return fmt.Sprintf("unknown predefined route key%s: only $connect, $disconnect and $default may start with $; %s", didyoumean.Suggest(key, predefined), want)
	case CheckRouteKey(key) == "":
		return "an http route key in a websocket API; " + want
	case n == 0 || n > MaxWSRouteKeyLength:
		return fmt.Sprintf("a custom route key is 1 to %d characters; %s", MaxWSRouteKeyLength, want)
	case strings.ContainsFunc(key, unicode.IsControl):
		return "a route key must not contain control characters"
	}
	return ""
}

func checkWSLimits(path []string, l *WebSocketLimits) *checkErr {
	if l == nil {
		return errf(path, true, "no limits: a websocket API needs its WebSocket limits (Parse fills the defaults)")
	}
	if l.MaxMessageBytes < MinMaxMessageBytes || l.MaxMessageBytes > MaxMaxMessageBytes {
		return errf(sub(path, "maxMessageBytes"), false, "%d is out of range: want %d (1 KiB) to %d (16 MiB)", l.MaxMessageBytes, MinMaxMessageBytes, MaxMaxMessageBytes)
	}
	if l.MaxFrameBytes < MinMaxFrameBytes || l.MaxFrameBytes > l.MaxMessageBytes {
		return errf(sub(path, "maxFrameBytes"), false, "%d is out of range: want %d (1 KiB) to maxMessageBytes (%d)", l.MaxFrameBytes, MinMaxFrameBytes, l.MaxMessageBytes)
	}
	if l.IdleTimeout.D() < MinWSIdleTimeout || l.IdleTimeout.D() > MaxWSIdleTimeout {
		return errf(sub(path, "idleTimeout"), false, "%v is out of range: want 1s to 2h", l.IdleTimeout)
	}
	if l.MaxConnectionDuration.D() < MinMaxConnectionDuration || l.MaxConnectionDuration.D() > MaxMaxConnectionDuration {
		return errf(sub(path, "maxConnectionDuration"), false, "%v is out of range: want 1s to 24h", l.MaxConnectionDuration)
	}
	if l.SendQueue < MinSendQueue || l.SendQueue > MaxSendQueue {
		return errf(sub(path, "sendQueue"), false, "%d is out of range: want %d to %d (messages)", l.SendQueue, MinSendQueue, MaxSendQueue)
	}
	return nil
}

func checkStage(path []string, name string, st Stage, routeKeys []string) *checkErr {
	if name != DefaultStage && !validName(name, 128, false) {
		return errf(path, true, "%s is not a valid stage name: want %s or 1 to 128 letters, digits, - and _", yamlnode.QuoteShort(name), DefaultStage)
	}
	if st.Name != name {
		return errf(path, true, "Name %q differs from the map key", st.Name)
	}
	if len(st.Variables) > MaxStageVariables {
		return errf(sub(path, "variables"), true, "more than %d variables in one stage", MaxStageVariables)
	}
	for _, k := range slices.Sorted(maps.Keys(st.Variables)) {
		v := st.Variables[k]
		kp := sub(path, "variables", k)
		if !validName(k, 64, true) {
			return errf(kp, true, "not a valid stage variable name: want 1 to 64 letters, digits and _")
		}
		if len(v) == 0 || len(v) > 512 || !allIn(v, isStageValueChar) {
			return errf(kp, false, "%s is not a valid stage variable value: want 1 to 512 of the characters A-Z a-z 0-9 - . _ ~ : / ? # & = ,", yamlnode.QuoteShort(v))
		}
	}
	if st.Throttle != nil {
		if e := checkThrottle(sub(path, "throttle"), *st.Throttle); e != nil {
			return e
		}
	}
	if st.AccessLog != nil {
		if e := checkAccessLog(sub(path, "accessLog"), *st.AccessLog); e != nil {
			return e
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.RouteThrottles)) {
		kp := sub(path, "routeThrottles", k)
		if !slices.Contains(routeKeys, k) {
			return errf(kp, true, "no route %s in this API%s; routeThrottles are keyed by route key", yamlnode.QuoteShort(k), didyoumean.Suggest(k, routeKeys))
		}
		if e := checkThrottle(kp, st.RouteThrottles[k]); e != nil {
			return e
		}
	}
	return nil
}

// checkTarget checks a reference to a function of the stack, optionally qualified.
func (c *checker) checkTarget(path []string, target string) *checkErr {
	name, qualifier, qualified := strings.Cut(target, ":")
	if c.env.HasFunction == nil || !c.env.HasFunction(name) {
		return errf(path, false, "no function named %s in functions%s", yamlnode.QuoteShort(name), c.functionList())
	}
	if qualified && !validQualifier(qualifier) {
		return errf(path, false, "%s is not a version or alias of %s: want $LATEST, a version number (3) or an alias name (1 to 128 letters, digits, - and _, not all digits)",
			yamlnode.QuoteShort(qualifier), name)
	}
	return nil
}

// functionList names the defined functions for an unknown-target message.
func (c *checker) functionList() string {
	names := slices.Clone(c.env.FunctionNames)
	switch {
	case len(names) == 0:
		return " (it defines none)"
	case len(names) > 10:
		names = append(names[:10], "…")
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

func checkMount(m string) string {
	const want = `want "/" or a path of literal segments such as /shop/v1, without a trailing /`
	if m == "/" {
		return ""
	}
	if !strings.HasPrefix(m, "/") || strings.HasSuffix(m, "/") {
		return fmt.Sprintf("%s is not a mount: %s", yamlnode.QuoteShort(m), want)
	}
	for _, seg := range strings.Split(m[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || !allIn(seg, isPathChar) {
			return fmt.Sprintf("%s is not a mount: %s", yamlnode.QuoteShort(m), want)
		}
	}
	return ""
}

func checkHost(h string) string {
	if h == "" {
		return ""
	}
	switch {
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%s: give the host name only, without a scheme", yamlnode.QuoteShort(h))
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%s: give the host name only, without a port", yamlnode.QuoteShort(h))
	case len(h) > 253:
		return "a host name is at most 253 characters"
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			!allIn(label, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' }) {
			return fmt.Sprintf("%s is not a host name: want labels of letters, digits and - separated by dots, e.g. api.example.com", yamlnode.QuoteShort(h))
		}
	}
	return ""
}

func validStackName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' {
		return false
	}
	return allIn(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' })
}

// validName reports whether s is 1..maxLen of [A-Za-z0-9_-] (without - when noDash).
func validName(s string, maxLen int, noDash bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	return allIn(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || (r == '-' && !noDash)
	})
}

func ValidEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return validName(s, len(s), true)
}

func isStageValueChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~:/?#&=,", r)
}

// isPathChar reports RFC 3986 path characters other than % (no percent-encoding in mounts).
func isPathChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!$&'()*+,;=:@", r)
}

// validQualifier reports whether q can qualify a function name: $LATEST, a version number without a
// leading zero, or an alias name.
func validQualifier(q string) bool {
	switch {
	case q == "$LATEST":
		return true
	case q == "" || len(q) > 128:
		return false
	case allIn(q, func(r rune) bool { return r >= '0' && r <= '9' }):
		return q[0] != '0'
	}
	return allIn(q, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
	})
}

func allIn(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// FormatPath writes a key path: plain keys joined with ".", others quoted in brackets, e.g.
// apis.web.routes["GET /hello"].function.
func FormatPath(path []string) string {
	var b strings.Builder
	for _, seg := range path {
		if i, ok := strings.CutPrefix(seg, IndexMark); ok {
			b.WriteString("[" + i + "]")
			continue
		}
		if validName(seg, len(seg), false) {
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

// StackNameOf makes a valid stack name of another tool's name for a project (a directory's, a
// service's): lower-case letters and digits, other runs of characters as one -, at most 63;
// DefaultStackName when nothing is left.
func StackNameOf(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.Trim(s[:63], "-")
	}
	if s == "" {
		return DefaultStackName
	}
	return s
}

// ValidAuthorizerName reports whether name may name an authorizer.
func ValidAuthorizerName(name string) bool { return validName(name, MaxAuthorizerNameLength, false) }

// FunctionARN is the ARN of a function (or a qualified target, NAME:QUALIFIER) in a region and account.
func FunctionARN(region, account, target string) string {
	return "arn:aws:lambda:" + region + ":" + account + ":function:" + target
}
