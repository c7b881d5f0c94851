// Package respolicy evaluates API Gateway resource policies: the IAM policy documents attached to a
// REST API that say who may call it. Gatehouse has no AWS accounts and no signed callers, so it
// evaluates the part of a resource policy a gateway can decide on its own: statements for everyone
// ("Principal": "*") limited by the caller's source address (aws:SourceIp) and by a VPC-style source
// tag (aws:SourceVpc, aws:SourceVpce) that the operator sets from a header it trusts. The gateway
// evaluates the policy before any authorizer and refuses a denied request with 403 and [Message].
//
// [Parse] compiles a document once, when an API definition is applied; [Policy.Evaluate] runs per
// request, allocates nothing and takes no lock.
//
// # What is evaluated
//
// A document is {"Version": …, "Id": …, "Statement": […]}: Version is optional and, when present,
// "2012-10-17" or "2008-10-17"; Statement is a list of statements or a single one. A statement has
// Effect ("Allow" or "Deny"), Principal, Action or NotAction, Resource or NotResource, and optionally
// Sid and Condition:
//
//   - Principal must be "*" or {"AWS": "*"} (a list of "*" too). Any other principal, and
//     NotPrincipal, names AWS identities Gatehouse cannot tell apart, so [Parse] refuses it.
//   - Action and NotAction are strings or lists such as "execute-api:Invoke", "execute-api:*" or
//     "*", compared without regard to case, "*" and "?" being wildcards. A request is the action
//     execute-api:Invoke; a statement whose actions do not cover it never applies.
//   - Resource and NotResource are strings or lists of full ARNs,
//     arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH, or API Gateway's shorthand
//     execute-api:/STAGE/METHOD/PATH (execute-api:/* is every stage, method and path), with "*"
//     matching any run of characters, "/" and ":" included, and "?" any one character. Matching is
//     case-sensitive, as IAM's is. The shorthand names the API the policy is attached to: it matches
//     the part of the request's ARN after the API id, whatever the region, account and API id.
//   - Condition maps operators to keys to values. The operators are IpAddress and NotIpAddress, on
//     aws:SourceIp, with IPv4 or IPv6 CIDR blocks or single addresses; and StringEquals,
//     StringNotEquals, StringLike and StringNotLike (with "*" and "?"), on aws:SourceVpc and
//     aws:SourceVpce, which are both the request's source tag. Keys are compared without regard to
//     case, as IAM does. A key's values are alternatives (any one may match; for the Not operators,
//     none may), and every key of every operator must hold for the statement to apply.
//
// Unknown elements, operators and keys are errors, never ignored: ignoring a condition of a Deny
// would let through what it was written to stop. So are the …IfExists operators, the
// ForAnyValue:/ForAllValues: set operators and, in a "2012-10-17" document, policy variables
// (${…}), which this package does not evaluate. JSON objects with a key given twice are refused
// too, since two readers could take different ones.
//
// # How it decides
//
// As IAM does: a matching Deny statement wins ([ExplicitDeny]); otherwise a matching Allow statement
// allows ([Allow]); otherwise the request is denied ([ImplicitDeny]). A statement matches when its
// Action covers execute-api:Invoke, its Resource covers the request's ARN and all its conditions
// hold. A key the request does not carry (no source tag, no source address) makes the positive
// operators false and the Not operators true, as in IAM.
//
// # Limits
//
// API Gateway limits a resource policy to 8192 characters ("Length, in characters, of API Gateway
// resource policy" in the API Gateway developer guide's quotas for REST APIs; AWS can raise it on
// request). [Parse] applies [MaxLength], counting the characters of the document without the
// whitespace between JSON tokens, as IAM counts its own policies (whether API Gateway counts that
// whitespace is not documented). It also refuses input over [MaxDocumentBytes] before reading it,
// more than [MaxStatements] statements and more than [MaxAddresses] address blocks, the last two
// Gatehouse's own bounds. Parse's time is linear in its input.
package respolicy

import (
	"net/netip"
	"strconv"
	"strings"
)

// Limits of a policy document. See the package documentation for where they come from.
const (
	// MaxLength is API Gateway's quota on a resource policy's length, in characters.
	MaxLength = 8192
	// MaxDocumentBytes bounds the input Parse reads at all, whitespace included.
	MaxDocumentBytes = 64 << 10
	// MaxStatements is the most statements a policy may have.
	MaxStatements = 100
	// MaxAddresses is the most aws:SourceIp values (CIDR blocks and addresses) a policy may have,
	// counted over all its statements.
	MaxAddresses = 1000
)

// Decision is what a policy says of a request.
type Decision int

// The decisions. The zero value is ImplicitDeny, so a Decision nobody set refuses.
const (
	// ImplicitDeny: no statement allows the request and none denies it.
	ImplicitDeny Decision = iota
	// Allow: an Allow statement matches and no Deny statement does.
	Allow
	// ExplicitDeny: a Deny statement matches.
	ExplicitDeny
)

// String returns "Allow", "ImplicitDeny" or "ExplicitDeny".
func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ImplicitDeny:
		return "ImplicitDeny"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "Decision(" + strconv.Itoa(int(d)) + ")"
}

// Request is what a policy is evaluated against.
type Request struct {
	// SourceIP is the caller's address; IPv4-mapped IPv6 addresses count as IPv4. The zero Addr
	// means none is known: IpAddress conditions are then false and NotIpAddress ones true.
	SourceIP netip.Addr
	// MethodARN is the request's execute-api ARN, as authorizers receive it:
	// arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH (see [ARN]). A request whose
	// MethodARN is not of that shape is never allowed.
	MethodARN string
	// SourceVPC is the request's source tag, the value of aws:SourceVpc and aws:SourceVpce, taken
	// from a header the operator trusts; "" when the request has none.
	SourceVPC string
}

// ARN returns the execute-api ARN of a request to an API's stage:
// arn:aws:execute-api:REGION:ACCOUNT:API-ID/STAGE/METHOD/PATH. path is the request's path below
// the stage, starting with "/" ("/" for the stage's root).
func ARN(region, account, apiID, stage, method, path string) string {
	return "arn:aws:execute-api:" + region + ":" + account + ":" + apiID + "/" + stage + "/" + method + path
}

// Message returns the message API Gateway answers a refused request with, in the body of a 403
// response: "User: anonymous is not authorized to perform: execute-api:Invoke on resource: ARN",
// followed by " with an explicit deny" for [ExplicitDeny]. It returns "" for [Allow].
//
// AWS has been observed to send it under the key "Message", with a capital M:
// {"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: …"}.
func Message(d Decision, arn string) string {
	const prefix = "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
	switch d {
	case Allow:
		return ""
	case ExplicitDeny:
		return prefix + arn + " with an explicit deny"
	}
	return prefix + arn
}

// Policy is a compiled resource policy. It is immutable: one Policy may be evaluated by any number
// of goroutines at once.
type Policy struct {
	// deny and allow are the statements that apply to execute-api:Invoke, by effect; statements
	// whose actions do not cover it are dropped once checked.
	deny, allow []statement
	// statements is the number of statements in the document.
	statements int
}

// Statements returns the number of statements in the policy's document, including those that
// never apply to execute-api:Invoke.
func (p *Policy) Statements() int { return p.statements }

// Evaluate returns what p says of r. A nil *Policy is no policy: it allows every request, as API
// Gateway does for an API without a resource policy.
//
// Evaluate allocates nothing and takes no lock. A condition on aws:SourceIp is a binary search of
// its blocks, merged into ranges by Parse; a pattern is matched in time linear in the ARN or tag,
// except that a part of a pattern between two stars that has a "?" may take time proportional to
// the ARN's length times its own.
func (p *Policy) Evaluate(r Request) Decision {
	if p == nil {
		return Allow
	}
	suffix, ok := arnSuffix(r.MethodARN)
	if !ok {
		return ImplicitDeny
	}
	ip := r.SourceIP.Unmap()
	for i := range p.deny {
		if p.deny[i].matches(r.MethodARN, suffix, ip, r.SourceVPC) {
			return ExplicitDeny
		}
	}
	for i := range p.allow {
		if p.allow[i].matches(r.MethodARN, suffix, ip, r.SourceVPC) {
			return Allow
		}
	}
	return ImplicitDeny
}

// statement is a compiled statement that applies to execute-api:Invoke.
type statement struct {
	// resources are the Resource patterns, or the NotResource ones when notResource is set.
	resources   []resource
	notResource bool
	// conds must all hold.
	conds []condition
}

func (s *statement) matches(arn, suffix string, ip netip.Addr, vpc string) bool {
	// Conditions first: comparing addresses and tags is cheaper than matching patterns.
	for i := range s.conds {
		if !s.conds[i].holds(ip, vpc) {
			return false
		}
	}
	in := false
	for i := range s.resources {
		if s.resources[i].matches(arn, suffix) {
			in = true
			break
		}
	}
	return in != s.notResource
}

// resource is one Resource pattern.
type resource struct {
	// short is API Gateway's shorthand, execute-api:/…: g then matches the ARN from the "/" after
	// the API id on. Otherwise g matches the whole ARN.
	short bool
	g     glob
}

func (r *resource) matches(arn, suffix string) bool {
	if r.short {
		return r.g.match(suffix)
	}
	return r.g.match(arn)
}

// condKey is a condition key Gatehouse evaluates.
type condKey uint8

const (
	keySourceIP condKey = iota
	keySourceVPC
)

// condition is one key of one operator of a Condition.
type condition struct {
	key condKey
	// negate makes the condition hold when none of the values matches (the Not operators).
	negate bool
	// addrs are aws:SourceIp's values, exact the StringEquals values and like the StringLike ones;
	// one of them is set.
	addrs addrSet
	exact []string
	like  []glob
}

func (c *condition) holds(ip netip.Addr, vpc string) bool {
	m := false
	switch c.key {
	case keySourceIP:
		m = ip.IsValid() && c.addrs.contains(ip)
	case keySourceVPC:
		if vpc != "" {
			for _, v := range c.exact {
				if v == vpc {
					m = true
					break
				}
			}
			for i := 0; !m && i < len(c.like); i++ {
				m = c.like[i].match(vpc)
			}
		}
	}
	return m != c.negate
}

// arnSuffix returns the resource part of an execute-api ARN from the "/" after the API id on
// ("/STAGE/METHOD/PATH"), and whether arn is such an ARN.
func arnSuffix(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return "", false
	}
	// partition:execute-api:region:account:resource
	for i := range 4 {
		j := strings.IndexByte(rest, ':')
		if j < 0 || (i == 1 && rest[:j] != "execute-api") {
			return "", false
		}
		rest = rest[j+1:]
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return "", false
	}
	return rest[slash:], true
}
