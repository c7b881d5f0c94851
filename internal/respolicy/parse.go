package respolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"gatehouse.dev/gatehouse/internal/didyoumean"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The errors [Parse] returns wrap one of these, in an [*Error] that says where the problem is.
var (
	// ErrInvalid: the document is not a valid policy (bad JSON, a missing or misspelt element, a
	// value of the wrong type, an address that is not one).
	ErrInvalid = errors.New("invalid resource policy")
	// ErrUnsupported: the document may be valid IAM, but it asks for something Gatehouse cannot
	// evaluate (a principal other than "*", a condition operator or key it does not know, policy
	// variables).
	ErrUnsupported = errors.New("resource policy not supported by Gatehouse")
	// ErrTooLarge: the document is over one of the package's limits.
	ErrTooLarge = errors.New("resource policy too large")
)

// Error is a problem [Parse] found in a document.
type Error struct {
	// Path is where, in the document: "Statement[1].Condition.IpAddress.aws:SourceIp[0]", with
	// statements and values counted from 0 ("Statement" alone when the document has a single
	// statement object); "" for the document as a whole.
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is ErrInvalid, ErrUnsupported or ErrTooLarge.
	Err error
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "resource policy: " + e.Msg
	}
	return "resource policy: " + e.Path + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Parse compiles a resource policy document. See the package documentation for what it accepts. The
// error, if any, is an [*Error] wrapping [ErrInvalid], [ErrUnsupported] or [ErrTooLarge], and names
// the first problem found.
//
// Parse never panics, and its time is linear in the length of doc.
func Parse(doc []byte) (*Policy, error) {
	if len(doc) > MaxDocumentBytes {
		return nil, &Error{Msg: fmt.Sprintf("the document is %d bytes, more than the %d read at all (API Gateway's limit is %d characters)", len(doc), MaxDocumentBytes, MaxLength), Err: ErrTooLarge}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		msg := "not valid JSON: " + err.Error()
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			msg = fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())
		}
		return nil, &Error{Msg: msg, Err: ErrInvalid}
	}
	if n := utf8.RuneCount(compact.Bytes()); n > MaxLength {
		return nil, &Error{Msg: fmt.Sprintf("the document is %d characters long without whitespace between JSON tokens; API Gateway's limit is %d", n, MaxLength), Err: ErrTooLarge}
	}
	root, err := readTree(compact.Bytes())
	if err != nil {
		return nil, &Error{Msg: err.Error(), Err: ErrInvalid}
	}
	var c compiler
	return c.policy(root)
}

// compiler carries what compiling one document needs across its statements.
type compiler struct {
	// vars is set for a "2012-10-17" document, in which ${…} is a policy variable.
	vars bool
	// addresses counts the aws:SourceIp values so far.
	addresses int
}

var (
	documentKeys  = []string{"Version", "Id", "Statement"}
	statementKeys = []string{"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)

func (c *compiler) policy(root *node) (*Policy, error) {
	if err := checkObject(root, "", documentKeys, "a policy document"); err != nil {
		return nil, err
	}
	if v := root.get("Version"); v != nil {
		if v.kind != kindString || (v.str != "2012-10-17" && v.str != "2008-10-17") {
			return nil, invalid("Version", `must be "2012-10-17" or "2008-10-17"`)
		}
		c.vars = v.str == "2012-10-17"
	}
	if v := root.get("Id"); v != nil && v.kind != kindString {
		return nil, invalid("Id", "must be a string, not "+v.kind.String())
	}
	st := root.get("Statement")
	if st == nil {
		return nil, invalid("", "the document has no Statement")
	}
	var stmts []*node
	switch st.kind {
	case kindObject:
		stmts = []*node{st}
	case kindList:
		stmts = st.list
		if len(stmts) == 0 {
			return nil, invalid("Statement", "the list is empty: a policy needs at least one statement")
		}
	default:
		return nil, invalid("Statement", "must be a statement object or a list of them, not "+st.kind.String())
	}
	if len(stmts) > MaxStatements {
		return nil, &Error{Path: "Statement", Msg: fmt.Sprintf("%d statements; at most %d are accepted", len(stmts), MaxStatements), Err: ErrTooLarge}
	}
	p := &Policy{statements: len(stmts)}
	for i, n := range stmts {
		path := "Statement"
		if st.kind == kindList {
			path += "[" + strconv.Itoa(i) + "]"
		}
		s, deny, applies, err := c.statement(n, path)
		if err != nil {
			return nil, err
		}
		switch {
		case !applies:
		case deny:
			p.deny = append(p.deny, s)
		default:
			p.allow = append(p.allow, s)
		}
	}
	return p, nil
}

// statement compiles one statement, and says whether it is a Deny and whether it applies to
// execute-api:Invoke at all.
func (c *compiler) statement(n *node, path string) (s statement, deny, applies bool, err error) {
	if err = checkObject(n, path, statementKeys, "a statement"); err != nil {
		return
	}
	if v := n.get("Sid"); v != nil && v.kind != kindString {
		err = invalid(join(path, "Sid"), "must be a string, not "+v.kind.String())
		return
	}

	switch v := n.get("Effect"); {
	case v == nil:
		err = invalid(path, `the statement has no Effect: write "Effect": "Allow" or "Effect": "Deny"`)
		return
	case v.kind == kindString && v.str == "Allow":
	case v.kind == kindString && v.str == "Deny":
		deny = true
	default:
		msg := `must be "Allow" or "Deny"`
		if v.kind == kindString {
			msg = quote(v.str) + " is not an effect: " + msg + didyoumean.Suggest(v.str, []string{"Allow", "Deny"})
		}
		err = invalid(join(path, "Effect"), msg)
		return
	}

	if n.get("NotPrincipal") != nil {
		err = &Error{Path: join(path, "NotPrincipal"), Msg: `NotPrincipal names AWS identities, and Gatehouse has no AWS accounts to tell them apart: write "Principal": "*"`, Err: ErrUnsupported}
		return
	}
	if err = checkPrincipal(n.get("Principal"), join(path, "Principal"), path); err != nil {
		return
	}

	if applies, err = checkActions(n, path); err != nil {
		return
	}
	if s.resources, s.notResource, err = c.resources(n, path); err != nil {
		return
	}
	if v := n.get("Condition"); v != nil {
		if s.conds, err = c.conditions(v, join(path, "Condition")); err != nil {
			return
		}
	}
	return
}

const principalHelp = `only "*" (or {"AWS": "*"}) can be evaluated here: Gatehouse has no AWS accounts, so it cannot tell one AWS principal from another`

func checkPrincipal(v *node, path, stmtPath string) error {
	if v == nil {
		return invalid(stmtPath, `the statement has no Principal: a resource policy names whom it is about; write "Principal": "*"`)
	}
	switch v.kind {
	case kindString:
		if v.str != "*" {
			return &Error{Path: path, Msg: quote(v.str) + ": " + principalHelp, Err: ErrUnsupported}
		}
		return nil
	case kindObject:
		if v.hasDup {
			return invalid(path, "the key "+quote(v.dup)+" appears more than once")
		}
		if len(v.obj) == 0 {
			return invalid(path, "the object is empty: "+principalHelp)
		}
		for _, f := range v.obj {
			if f.key != "AWS" {
				return &Error{Path: join(path, f.key), Msg: "the principal type " + quote(f.key) + didyoumean.Suggest(f.key, []string{"AWS"}) + ": " + principalHelp, Err: ErrUnsupported}
			}
			vals, err := stringList(f.val, join(path, f.key))
			if err != nil {
				return err
			}
			for i, s := range vals {
				if s != "*" {
					return &Error{Path: elemPath(join(path, f.key), f.val, i), Msg: quote(s) + ": " + principalHelp, Err: ErrUnsupported}
				}
			}
		}
		return nil
	}
	return invalid(path, `must be "*" or {"AWS": "*"}, not `+v.kind.String())
}

// invoke is the action every request is, in lower case.
const invoke = "execute-api:invoke"

// checkActions checks a statement's Action or NotAction and says whether it covers
// execute-api:Invoke.
func checkActions(n *node, path string) (bool, error) {
	key, not, err := oneOf(n, path, "Action", "NotAction")
	if err != nil {
		return false, err
	}
	v := n.get(key)
	vals, err := stringList(v, join(path, key))
	if err != nil {
		return false, err
	}
	covers := false
	for i, a := range vals {
		if !validAction(a) {
			return false, invalid(elemPath(join(path, key), v, i), quote(a)+` is not an action: an action is "service:name", such as "execute-api:Invoke", or "*"`)
		}
		g := compileGlob(strings.ToLower(a))
		if g.match(invoke) {
			covers = true
		}
	}
	return covers != not, nil
}

func validAction(a string) bool {
	if a == "*" {
		return true
	}
	svc, name, ok := strings.Cut(a, ":")
	if !ok || svc == "" || name == "" || strings.Contains(name, ":") {
		return false
	}
	for _, r := range a {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func (c *compiler) resources(n *node, path string) ([]resource, bool, error) {
	key, not, err := oneOf(n, path, "Resource", "NotResource")
	if err != nil {
		return nil, false, err
	}
	v := n.get(key)
	vals, err := stringList(v, join(path, key))
	if err != nil {
		return nil, false, err
	}
	out := make([]resource, 0, len(vals))
	for i, s := range vals {
		p := elemPath(join(path, key), v, i)
		if c.vars && strings.Contains(s, "${") {
			return nil, false, unsupportedVariable(p, s)
		}
		var r resource
		switch {
		case strings.HasPrefix(s, "execute-api:/"):
			r = resource{short: true, g: compileGlob(strings.TrimPrefix(s, "execute-api:"))}
		case s == "*" || strings.HasPrefix(s, "arn:"):
			r = resource{g: compileGlob(s)}
		default:
			return nil, false, invalid(p, quote(s)+" is not a resource: write an ARN (arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH), API Gateway's shorthand execute-api:/STAGE/METHOD/PATH, or \"*\"")
		}
		out = append(out, r)
	}
	return out, not, nil
}

// operator is a condition operator Gatehouse evaluates.
type operator struct {
	name   string
	ip     bool // on aws:SourceIp; otherwise on the source tag
	like   bool // with wildcards
	negate bool
}

var operators = []operator{
	{name: "IpAddress", ip: true},
	{name: "NotIpAddress", ip: true, negate: true},
	{name: "StringEquals"},
	{name: "StringNotEquals", negate: true},
	{name: "StringLike", like: true},
	{name: "StringNotLike", like: true, negate: true},
}

var operatorNames = []string{"IpAddress", "NotIpAddress", "StringEquals", "StringNotEquals", "StringLike", "StringNotLike"}

const (
	operatorHelp = "the operators evaluated here are IpAddress and NotIpAddress (on aws:SourceIp) and StringEquals, StringNotEquals, StringLike and StringNotLike (on aws:SourceVpc and aws:SourceVpce)"
	keyHelp      = "the keys evaluated here are aws:SourceIp (with IpAddress, NotIpAddress), and aws:SourceVpc and aws:SourceVpce (with StringEquals, StringNotEquals, StringLike, StringNotLike)"
)

// iamOperators are IAM's other condition operators: valid in a policy, but not evaluated here.
var iamOperators = []string{
	"StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "NumericEquals", "NumericNotEquals",
	"NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
	"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
	"DateGreaterThanEquals", "Bool", "BinaryEquals", "ArnEquals", "ArnLike", "ArnNotEquals",
	"ArnNotLike", "Null",
}

func (c *compiler) conditions(v *node, path string) ([]condition, error) {
	if v.kind != kindObject {
		return nil, invalid(path, "must be an object of operators, not "+v.kind.String())
	}
	if v.hasDup {
		return nil, invalid(path, "the operator "+quote(v.dup)+" appears more than once")
	}
	var out []condition
	for _, f := range v.obj {
		opPath := join(path, f.key)
		op, err := lookupOperator(f.key, opPath)
		if err != nil {
			return nil, err
		}
		keys := f.val
		switch {
		case keys.kind != kindObject:
			return nil, invalid(opPath, "must be an object of condition keys, not "+keys.kind.String())
		case keys.hasDup:
			return nil, invalid(opPath, "the key "+quote(keys.dup)+" appears more than once")
		case len(keys.obj) == 0:
			return nil, invalid(opPath, "the operator has no condition key")
		}
		for _, k := range keys.obj {
			cond, err := c.condition(op, k, join(opPath, k.key))
			if err != nil {
				return nil, err
			}
			out = append(out, cond)
		}
	}
	return out, nil
}

func lookupOperator(name, path string) (operator, error) {
	for _, op := range operators {
		if op.name == name {
			return op, nil
		}
	}
	if strings.HasPrefix(name, "ForAnyValue:") || strings.HasPrefix(name, "ForAllValues:") {
		return operator{}, &Error{Path: path, Msg: "the set operators ForAnyValue: and ForAllValues: are not evaluated here: aws:SourceIp and aws:SourceVpc have one value; write the operator alone; " + operatorHelp, Err: ErrUnsupported}
	}
	if base, ok := strings.CutSuffix(name, "IfExists"); ok {
		msg := "the …IfExists operators are not evaluated here"
		for _, op := range operators {
			switch {
			case op.name != base:
			case op.ip:
				msg += "; write " + quote(base) + ": every request has a source address"
			default:
				msg += "; write " + quote(base) + ": a request without a source tag makes StringEquals and StringLike false, and StringNotEquals and StringNotLike true"
			}
		}
		return operator{}, &Error{Path: path, Msg: msg + "; " + operatorHelp, Err: ErrUnsupported}
	}
	for _, known := range iamOperators {
		if known == name {
			return operator{}, &Error{Path: path, Msg: "the condition operator " + quote(name) + " is not evaluated here; " + operatorHelp, Err: ErrUnsupported}
		}
	}
	return operator{}, invalid(path, "unknown condition operator "+quote(name)+didyoumean.Suggest(name, operatorNames)+"; "+operatorHelp)
}

func (c *compiler) condition(op operator, k field, path string) (condition, error) {
	var key condKey
	switch {
	case strings.EqualFold(k.key, "aws:SourceIp"):
		key = keySourceIP
	case strings.EqualFold(k.key, "aws:SourceVpc"), strings.EqualFold(k.key, "aws:SourceVpce"):
		key = keySourceVPC
	default:
		sentinel := ErrInvalid
		if strings.Contains(k.key, ":") {
			sentinel = ErrUnsupported
		}
		return condition{}, &Error{Path: path, Msg: "the condition key " + quote(k.key) + " cannot be evaluated here" + didyoumean.Suggest(k.key, []string{"aws:SourceIp", "aws:SourceVpc", "aws:SourceVpce"}) + "; " + keyHelp, Err: sentinel}
	}
	if op.ip != (key == keySourceIP) {
		if op.ip {
			return condition{}, invalid(path, op.name+" compares addresses and applies to aws:SourceIp only; compare aws:SourceVpc and aws:SourceVpce with StringEquals, StringNotEquals, StringLike or StringNotLike")
		}
		return condition{}, invalid(path, op.name+" compares strings and does not apply to aws:SourceIp; compare addresses with IpAddress or NotIpAddress")
	}
	vals, err := stringList(k.val, path)
	if err != nil {
		return condition{}, err
	}
	cond := condition{key: key, negate: op.negate}
	var blocks []netip.Prefix
	for i, s := range vals {
		p := elemPath(path, k.val, i)
		switch {
		case op.ip:
			c.addresses++
			if c.addresses > MaxAddresses {
				return condition{}, &Error{Path: p, Msg: fmt.Sprintf("more than %d aws:SourceIp values in the policy", MaxAddresses), Err: ErrTooLarge}
			}
			pfx, ok := parseAddresses(s)
			if !ok {
				return condition{}, invalid(p, quote(s)+` is not an IPv4 or IPv6 address or CIDR block, such as "192.0.2.0/24", "192.0.2.7" or "2001:db8::/32"`)
			}
			blocks = append(blocks, pfx)
		case c.vars && strings.Contains(s, "${"):
			return condition{}, unsupportedVariable(p, s)
		case op.like:
			cond.like = append(cond.like, compileGlob(s))
		default:
			cond.exact = append(cond.exact, s)
		}
	}
	if op.ip {
		cond.addrs = newAddrSet(blocks)
	}
	return cond, nil
}

// parseAddresses reads an aws:SourceIp value: a CIDR block or a single address, IPv4 or IPv6. An
// IPv4-mapped IPv6 block is taken as the IPv4 block it maps, since requests' addresses are
// compared unmapped.
func parseAddresses(s string) (netip.Prefix, bool) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, false
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), true
}

func unsupportedVariable(path, s string) error {
	return &Error{Path: path, Msg: quote(s) + ": policy variables (${…}) are not evaluated here", Err: ErrUnsupported}
}

// oneOf returns which of the keys a and b the statement n has, requiring exactly one, and whether
// it is b.
func oneOf(n *node, path, a, b string) (string, bool, error) {
	hasA, hasB := n.get(a) != nil, n.get(b) != nil
	switch {
	case hasA && hasB:
		return "", false, invalid(path, "the statement has both "+a+" and "+b+"; write one of them")
	case hasA:
		return a, false, nil
	case hasB:
		return b, true, nil
	}
	return "", false, invalid(path, "the statement has neither "+a+" nor "+b)
}

// stringList reads a string or a non-empty list of strings.
func stringList(v *node, path string) ([]string, error) {
	switch v.kind {
	case kindString:
		if v.str == "" {
			return nil, invalid(path, "the value is empty")
		}
		return []string{v.str}, nil
	case kindList:
		if len(v.list) == 0 {
			return nil, invalid(path, "the list is empty")
		}
		out := make([]string, len(v.list))
		for i, e := range v.list {
			if e.kind != kindString {
				return nil, invalid(elemPath(path, v, i), "must be a string, not "+e.kind.String())
			}
			if e.str == "" {
				return nil, invalid(elemPath(path, v, i), "the value is empty")
			}
			out[i] = e.str
		}
		return out, nil
	}
	return nil, invalid(path, "must be a string or a list of strings, not "+v.kind.String())
}

// checkObject requires n to be an object whose keys are among allowed, each once.
func checkObject(n *node, path string, allowed []string, what string) error {
	if n.kind != kindObject {
		return invalid(path, what+" must be a JSON object, not "+n.kind.String())
	}
	if n.hasDup {
		return invalid(path, "the key "+quote(n.dup)+" appears more than once")
	}
	for _, f := range n.obj {
		known := false
		for _, k := range allowed {
			if f.key == k {
				known = true
				break
			}
		}
		if !known {
			return invalid(path, "unknown element "+quote(f.key)+" in "+what+didyoumean.Suggest(f.key, allowed)+"; "+what+" has "+strings.Join(allowed, ", "))
		}
	}
	return nil
}

func invalid(path, msg string) error {
	return &Error{Path: path, Msg: msg, Err: ErrInvalid}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// elemPath is the path of the i-th value of v: path[i] when v is a list, path when it is a single
// value.
func elemPath(path string, v *node, i int) string {
	if v.kind != kindList {
		return path
	}
	return path + "[" + strconv.Itoa(i) + "]"
}

// quote quotes s for a message, shortened to its first 64 characters.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		n := 0
		for i := range s {
			if n == 64 {
				return strconv.Quote(s[:i]) + "…"
			}
			n++
		}
	}
	return strconv.Quote(s)
}
