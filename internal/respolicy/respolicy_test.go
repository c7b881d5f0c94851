package respolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

const testAPI = "arn:aws:execute-api:us-east-1:123456789012:abc123"

// req is a request to testAPI from ip ("" for none) for method and path in stage, tagged vpc.
func req(ip, stage, method, path, vpc string) Request {
	r := Request{MethodARN: testAPI + "/" + stage + "/" + method + path, SourceVPC: vpc}
	if ip != "" {
		r.SourceIP = netip.MustParseAddr(ip)
	}
	return r
}

// get is a GET of /pets in the prod stage from ip.
func get(ip string) Request { return req(ip, "prod", "GET", "/pets", "") }

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestParseErrors(t *testing.T) {
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	allowIf := func(cond string) string {
		return stmt(`{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"execute-api:/*","Condition":` + cond + `}`)
	}
	var many strings.Builder
	for i := range MaxStatements + 1 {
		if i > 0 {
			many.WriteByte(',')
		}
		many.WriteString(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`)
	}
	var ips strings.Builder
	for i := range MaxAddresses + 1 {
		if i > 0 {
			ips.WriteByte(',')
		}
		fmt.Fprintf(&ips, `"::%x"`, i)
	}
	tests := []struct {
		name string
		doc  string
		err  error
		path string
		msg  string // a part of the message
	}{
		{"empty", ``, ErrInvalid, "", "not valid JSON"},
		{"bad JSON", `{"Statement": [`, ErrInvalid, "", "not valid JSON"},
		{"bad JSON inside", `{"Statement": [{"Effect": Allow}]}`, ErrInvalid, "", "not valid JSON at byte"},
		{"two values", `{} {}`, ErrInvalid, "", "not valid JSON"},
		{"not an object", `[]`, ErrInvalid, "", "a policy document must be a JSON object, not a list"},
		{"no statement", `{"Version":"2012-10-17"}`, ErrInvalid, "", "the document has no Statement"},
		{"empty statement list", `{"Statement":[]}`, ErrInvalid, "Statement", "at least one statement"},
		{"statement a string", `{"Statement":"x"}`, ErrInvalid, "Statement", "not a string"},
		{"bad version", `{"Version":"2013-01-01","Statement":{}}`, ErrInvalid, "Version", `"2012-10-17" or "2008-10-17"`},
		{"unknown document element", `{"Statment":[]}`, ErrInvalid, "", `unknown element "Statment" in a policy document (did you mean "Statement"?)`},
		{"missing Effect", stmt(`{"Principal":"*","Action":"*","Resource":"*"}`), ErrInvalid, "Statement[0]", "no Effect"},
		{"lower-case effect", stmt(`{"Effect":"allow","Principal":"*","Action":"*","Resource":"*"}`), ErrInvalid, "Statement[0].Effect", `(did you mean "Allow"?)`},
		{"effect not a string", stmt(`{"Effect":true,"Principal":"*","Action":"*","Resource":"*"}`), ErrInvalid, "Statement[0].Effect", `must be "Allow" or "Deny"`},
		{"missing Principal", stmt(`{"Effect":"Allow","Action":"*","Resource":"*"}`), ErrInvalid, "Statement[0]", "no Principal"},
		{"account principal", stmt(`{"Effect":"Allow","Principal":"arn:aws:iam::111122223333:root","Action":"*","Resource":"*"}`), ErrUnsupported, "Statement[0].Principal", `only "*" (or {"AWS": "*"}) can be evaluated here`},
		{"role principal", stmt(`{"Effect":"Allow","Principal":{"AWS":["*","arn:aws:iam::111122223333:role/Admin"]},"Action":"*","Resource":"*"}`), ErrUnsupported, "Statement[0].Principal.AWS[1]", "no AWS accounts"},
		{"service principal", stmt(`{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}`), ErrUnsupported, "Statement[0].Principal.Service", `only "*"`},
		{"NotPrincipal", stmt(`{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"Principal":"*","Action":"*","Resource":"*"}`), ErrUnsupported, "Statement[0].NotPrincipal", "no AWS accounts"},
		{"misspelt Condition", stmt(`{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Conditon":{}}`), ErrInvalid, "Statement[0]", `unknown element "Conditon" in a statement (did you mean "Condition"?)`},
		{"lower-case element", stmt(`{"effect":"Deny","Principal":"*","Action":"*","Resource":"*"}`), ErrInvalid, "Statement[0]", `(did you mean "Effect"?)`},
		{"duplicate key", stmt(`{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{},"Condition":{}}`), ErrInvalid, "Statement[0]", `the key "Condition" appears more than once`},
		{"duplicate operator", allowIf(`{"IpAddress":{"aws:SourceIp":"10.0.0.1"},"IpAddress":{"aws:SourceIp":"10.0.0.2"}}`), ErrInvalid, "Statement[0].Condition", `"IpAddress" appears more than once`},
		{"Action and NotAction", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","NotAction":"*","Resource":"*"}`), ErrInvalid, "Statement[0]", "both Action and NotAction"},
		{"no Resource", stmt(`{"Effect":"Allow","Principal":"*","Action":"*"}`), ErrInvalid, "Statement[0]", "neither Resource nor NotResource"},
		{"bad action", stmt(`{"Effect":"Allow","Principal":"*","Action":["execute-api:Invoke","Invoke"],"Resource":"*"}`), ErrInvalid, "Statement[0].Action[1]", `"Invoke" is not an action`},
		{"empty action list", stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`), ErrInvalid, "Statement[0].Action", "the list is empty"},
		{"bad resource", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"/prod/GET/*"}`), ErrInvalid, "Statement[0].Resource", `"/prod/GET/*" is not a resource`},
		{"resource a number", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":[1]}`), ErrInvalid, "Statement[0].Resource[0]", "must be a string, not a number"},
		{"policy variable", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"execute-api:/${aws:username}/*"}`), ErrUnsupported, "Statement[0].Resource", "policy variables"},
		{"unknown operator", allowIf(`{"IpAddres":{"aws:SourceIp":"10.0.0.0/8"}}`), ErrInvalid, "Statement[0].Condition.IpAddres", `unknown condition operator "IpAddres" (did you mean "IpAddress"?); the operators evaluated here are IpAddress and NotIpAddress`},
		{"IAM operator", allowIf(`{"NumericEquals":{"aws:MultiFactorAuthAge":"1"}}`), ErrUnsupported, "Statement[0].Condition.NumericEquals", `"NumericEquals" is not evaluated here; the operators evaluated here are`},
		{"IfExists", allowIf(`{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}`), ErrUnsupported, "Statement[0].Condition.IpAddressIfExists", `…IfExists operators are not evaluated here; write "IpAddress"`},
		{"set operator", allowIf(`{"ForAnyValue:StringEquals":{"aws:SourceVpc":"vpc-1"}}`), ErrUnsupported, "Statement[0].Condition.ForAnyValue:StringEquals", "set operators"},
		{"unknown key", allowIf(`{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}`), ErrUnsupported, "Statement[0].Condition.StringEquals.aws:PrincipalOrgID", `the keys evaluated here are aws:SourceIp`},
		{"misspelt key", allowIf(`{"IpAddress":{"aws:SourceIP4":"10.0.0.0/8"}}`), ErrUnsupported, "Statement[0].Condition.IpAddress.aws:SourceIP4", `(did you mean "aws:SourceIp"?)`},
		{"key without prefix", allowIf(`{"IpAddress":{"sourceIp":"10.0.0.0/8"}}`), ErrInvalid, "Statement[0].Condition.IpAddress.sourceIp", "cannot be evaluated here"},
		{"IpAddress on a tag", allowIf(`{"IpAddress":{"aws:SourceVpc":"vpc-1"}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceVpc", "applies to aws:SourceIp only"},
		{"StringEquals on an address", allowIf(`{"StringEquals":{"aws:SourceIp":"10.0.0.1"}}`), ErrInvalid, "Statement[0].Condition.StringEquals.aws:SourceIp", "does not apply to aws:SourceIp"},
		{"empty operator", allowIf(`{"IpAddress":{}}`), ErrInvalid, "Statement[0].Condition.IpAddress", "no condition key"},
		{"condition a list", allowIf(`[]`), ErrInvalid, "Statement[0].Condition", "must be an object"},
		{"bad CIDR bits", allowIf(`{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","10.0.0.0/33"]}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceIp[1]", `"10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR block`},
		{"bad address", allowIf(`{"IpAddress":{"aws:SourceIp":"10.0.0.300"}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceIp", "not an IPv4 or IPv6 address"},
		{"not an address", allowIf(`{"NotIpAddress":{"aws:SourceIp":"office"}}`), ErrInvalid, "Statement[0].Condition.NotIpAddress.aws:SourceIp", "not an IPv4 or IPv6 address"},
		{"zoned address", allowIf(`{"IpAddress":{"aws:SourceIp":"fe80::1%eth0"}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceIp", "not an IPv4 or IPv6 address"},
		{"address with space", allowIf(`{"IpAddress":{"aws:SourceIp":" 10.0.0.1"}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceIp", "not an IPv4 or IPv6 address"},
		{"empty value list", allowIf(`{"IpAddress":{"aws:SourceIp":[]}}`), ErrInvalid, "Statement[0].Condition.IpAddress.aws:SourceIp", "the list is empty"},
		{"number value", allowIf(`{"StringEquals":{"aws:SourceVpc":7}}`), ErrInvalid, "Statement[0].Condition.StringEquals.aws:SourceVpc", "must be a string or a list of strings, not a number"},
		{"too deep", `{"Statement":[[[[[[[[[]]]]]]]]]}`, ErrInvalid, "", "more than 8 levels deep"},
		{"too many statements", `{"Statement":[` + many.String() + `]}`, ErrTooLarge, "Statement", "101 statements; at most 100"},
		{"too many addresses", allowIf(`{"IpAddress":{"aws:SourceIp":[` + ips.String() + `]}}`), ErrTooLarge, "Statement[0].Condition.IpAddress.aws:SourceIp[1000]", "more than 1000 aws:SourceIp values"},
		{"too many characters", allowIf(`{"StringEquals":{"aws:SourceVpc":"` + strings.Repeat("v", MaxLength) + `"}}`), ErrTooLarge, "", "API Gateway's limit is 8192"},
		{"too many bytes", strings.Repeat(" ", MaxDocumentBytes+1), ErrTooLarge, "", "more than the 65536 read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded with %d statements, want an error", p.Statements())
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v is not %v", err, tt.err)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if pe.Path != tt.path {
				t.Errorf("Path = %q, want %q (%v)", pe.Path, tt.path, err)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", pe.Msg, tt.msg)
			}
		})
	}
}

// TestErrorText pins whole messages, as an operator reads them.
func TestErrorText(t *testing.T) {
	tests := []struct{ doc, want string }{
		{
			`{"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAdress":{"aws:SourceIp":"10.0.0.0/8"}}}}`,
			`resource policy: Statement.Condition.IpAdress: unknown condition operator "IpAdress" (did you mean "IpAddress"?); the operators evaluated here are IpAddress and NotIpAddress (on aws:SourceIp) and StringEquals, StringNotEquals, StringLike and StringNotLike (on aws:SourceVpc and aws:SourceVpce)`,
		},
		{
			`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"*","Resource":"*"}}`,
			`resource policy: Statement.Principal.AWS: "arn:aws:iam::111122223333:root": only "*" (or {"AWS": "*"}) can be evaluated here: Gatehouse has no AWS accounts, so it cannot tell one AWS principal from another`,
		},
		{
			`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"},"IpAddress":{"aws:SourceIp":"192.0.2.0/24","aws:CurrentTime":"x"}}}}`,
			`resource policy: Statement.Condition.IpAddress.aws:CurrentTime: the condition key "aws:CurrentTime" cannot be evaluated here; the keys evaluated here are aws:SourceIp (with IpAddress, NotIpAddress), and aws:SourceVpc and aws:SourceVpce (with StringEquals, StringNotEquals, StringLike, StringNotLike)`,
		},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%s)\n got %v\nwant %s", tt.doc, err, tt.want)
		}
	}
}

// Policies for TestEvaluate.
const (
	// allowList is API Gateway's documented IP allow list.
	allowList = `{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": "*",
    "Action": "execute-api:Invoke",
    "Resource": "execute-api:/*",
    "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.7"]}}
  }]
}`
	// denyList is API Gateway's documented IP deny list: allow everyone, deny two blocks.
	denyList = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": ["execute-api:/*"]},
    {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": ["execute-api:/*"],
     "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.0/24"]}}}
  ]
}`
	// officeOnly denies everything outside 10.0.0.0/8.
	officeOnly = `{
  "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "execute-api:*", "Resource": "*"},
    {"Effect": "Deny", "Principal": {"AWS": ["*"]}, "Action": "*", "Resource": "arn:aws:execute-api:*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
  ]
}`
	ipv6 = `{
  "Statement": {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
    "Condition": {"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "::ffff:172.16.0.0/108", "2001:db8:ffff::1"]}}}
}`
	resources = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/prod/GET/pets/*"},
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
     "Resource": ["arn:aws:execute-api:us-east-1:123456789012:abc123/dev/*/items", "execute-api:/v?/GET/*"]}
  ]
}`
	// publicHealth lets everyone reach GET /health in any stage and only the office the rest.
	publicHealth = `{
  "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
    {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "NotResource": ["execute-api:/*/GET/health"],
     "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
  ]
}`
	notAction = `{
  "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "NotAction": "execute-api:ManageConnections", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
    {"Effect": "Deny", "Principal": "*", "NotAction": ["execute-api:Invoke"], "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": ["s3:GetObject", "execute-api:InvalidateCache"], "Resource": "*"}
  ]
}`
	// andOr allows 10/8 or 192.168/16, not 10.9/16, tagged vpc-1 or vpc-2.
	andOr = `{
  "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
    "Condition": {
      "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
      "NotIpAddress": {"aws:SourceIp": "10.9.0.0/16"},
      "StringEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}
    }}]
}`
	// privateAPI is API Gateway's private API pattern: deny any request not from vpc-1.
	privateAPI = `{
  "Statement": [
    {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"StringNotEquals": {"AWS:SOURCEVPC": "vpc-1"}}},
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"}
  ]
}`
	endpoints = `{
  "Statement": [
    {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"StringLike": {"aws:sourcevpce": ["vpce-0a*", "vpce-?b"]}}},
    {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"StringNotLike": {"aws:SourceVpce": "vpce-*"}}}
  ]
}`
	// literal is a "2008-10-17" document, in which ${…} is text.
	literal = `{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
  "Resource": "execute-api:/prod/GET/${x}"}}`
	allowAll = `{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "*"}}`
)

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		req    Request
		want   Decision
	}{
		{"allow list: inside a block", allowList, get("192.0.2.55"), Allow},
		{"allow list: a single address", allowList, get("198.51.100.7"), Allow},
		{"allow list: next to the single address", allowList, get("198.51.100.8"), ImplicitDeny},
		{"allow list: outside", allowList, get("203.0.113.1"), ImplicitDeny},
		{"allow list: IPv4-mapped", allowList, get("::ffff:192.0.2.1"), Allow},
		{"allow list: no address", allowList, get(""), ImplicitDeny},
		{"deny list: inside", denyList, get("198.51.100.200"), ExplicitDeny},
		{"deny list: outside", denyList, get("203.0.113.1"), Allow},
		{"deny list: IPv6 outside", denyList, get("2001:db8::1"), Allow},
		{"NotIpAddress: inside", officeOnly, get("10.1.2.3"), Allow},
		{"NotIpAddress: outside", officeOnly, get("11.0.0.1"), ExplicitDeny},
		{"NotIpAddress: no address", officeOnly, get(""), ExplicitDeny},
		{"IPv6: inside", ipv6, get("2001:db8:1::1"), Allow},
		{"IPv6: outside", ipv6, get("2001:db9::1"), ImplicitDeny},
		{"IPv6: an IPv4 address", ipv6, get("192.0.2.1"), ImplicitDeny},
		{"IPv6: mapped block, IPv4 request", ipv6, get("172.16.200.1"), Allow},
		{"IPv6: mapped block, outside", ipv6, get("172.32.0.1"), ImplicitDeny},
		{"resources: shorthand", resources, req("", "prod", "GET", "/pets/7", ""), Allow},
		{"resources: shorthand, another API", resources, Request{MethodARN: "arn:aws:execute-api:eu-west-1:999999999999:zzz999/prod/GET/pets/7"}, Allow},
		{"resources: shorthand needs the slash", resources, req("", "prod", "GET", "/pets", ""), ImplicitDeny},
		{"resources: other method", resources, req("", "prod", "POST", "/pets/7", ""), ImplicitDeny},
		{"resources: methods are case-sensitive", resources, req("", "prod", "get", "/pets/7", ""), ImplicitDeny},
		{"resources: full ARN", resources, req("", "dev", "PUT", "/items", ""), Allow},
		{"resources: full ARN, star spans segments", resources, req("", "dev", "PUT", "/a/b/items", ""), Allow},
		{"resources: full ARN, longer path", resources, req("", "dev", "PUT", "/items/1", ""), ImplicitDeny},
		{"resources: full ARN, another account", resources, Request{MethodARN: "arn:aws:execute-api:us-east-1:999999999999:abc123/dev/PUT/items"}, ImplicitDeny},
		{"resources: question mark", resources, req("", "v1", "GET", "/x", ""), Allow},
		{"resources: question mark is one character", resources, req("", "v10", "GET", "/x", ""), ImplicitDeny},
		{"NotResource: excluded path from outside", publicHealth, req("11.0.0.1", "prod", "GET", "/health", ""), Allow},
		{"NotResource: other path from outside", publicHealth, req("11.0.0.1", "prod", "GET", "/orders", ""), ExplicitDeny},
		{"NotResource: other path from inside", publicHealth, req("10.0.0.1", "prod", "GET", "/orders", ""), Allow},
		{"NotAction: denied block", notAction, get("203.0.113.9"), ExplicitDeny},
		{"NotAction: elsewhere", notAction, get("198.51.100.1"), Allow},
		{"AND/OR: first block, first tag", andOr, req("10.1.1.1", "prod", "GET", "/", "vpc-1"), Allow},
		{"AND/OR: second block, second tag", andOr, req("192.168.1.1", "prod", "GET", "/", "vpc-2"), Allow},
		{"AND/OR: excluded block", andOr, req("10.9.0.1", "prod", "GET", "/", "vpc-1"), ImplicitDeny},
		{"AND/OR: wrong tag", andOr, req("10.1.1.1", "prod", "GET", "/", "vpc-3"), ImplicitDeny},
		{"AND/OR: no tag", andOr, req("10.1.1.1", "prod", "GET", "/", ""), ImplicitDeny},
		{"AND/OR: outside", andOr, req("172.16.0.1", "prod", "GET", "/", "vpc-1"), ImplicitDeny},
		{"SourceVpc: StringNotEquals, the VPC", privateAPI, req("", "prod", "GET", "/", "vpc-1"), Allow},
		{"SourceVpc: StringNotEquals, another VPC", privateAPI, req("", "prod", "GET", "/", "vpc-2"), ExplicitDeny},
		{"SourceVpc: StringNotEquals, no tag", privateAPI, req("", "prod", "GET", "/", ""), ExplicitDeny},
		{"SourceVpc: values are case-sensitive", privateAPI, req("", "prod", "GET", "/", "VPC-1"), ExplicitDeny},
		{"SourceVpce: StringLike star", endpoints, req("", "prod", "GET", "/", "vpce-0abc"), Allow},
		{"SourceVpce: StringLike question mark", endpoints, req("", "prod", "GET", "/", "vpce-xb"), Allow},
		{"SourceVpce: StringLike no match", endpoints, req("", "prod", "GET", "/", "vpce-1"), ImplicitDeny},
		{"SourceVpce: StringNotLike", endpoints, req("", "prod", "GET", "/", "eni-1"), ExplicitDeny},
		{"SourceVpce: StringNotLike, no tag", endpoints, req("", "prod", "GET", "/", ""), ExplicitDeny},
		{"2008-10-17: ${ is text", literal, req("", "prod", "GET", "/${x}", ""), Allow},
		{"malformed ARN", allowAll, Request{MethodARN: "prod/GET/pets"}, ImplicitDeny},
		{"ARN of another service", allowAll, Request{MethodARN: "arn:aws:s3:us-east-1:1:abc/prod/GET/x"}, ImplicitDeny},
		{"ARN without an API id", allowAll, Request{MethodARN: "arn:aws:execute-api:us-east-1:1:/prod/GET/x"}, ImplicitDeny},
		{"allow all", allowAll, get("192.0.2.1"), Allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			if got := p.Evaluate(tt.req); got != tt.want {
				t.Errorf("Evaluate(%+v) = %v, want %v", tt.req, got, tt.want)
			}
		})
	}
}

func TestActions(t *testing.T) {
	tests := []struct {
		action string
		want   Decision
	}{
		{`"execute-api:Invoke"`, Allow},
		{`"EXECUTE-API:invoke"`, Allow},
		{`"execute-api:*"`, Allow},
		{`"*"`, Allow},
		{`"execute-api:Inv?ke"`, Allow},
		{`"execute-*:In*"`, Allow},
		{`["s3:GetObject", "execute-api:Invoke"]`, Allow},
		{`"execute-api:ManageConnections"`, ImplicitDeny},
		{`"s3:*"`, ImplicitDeny},
	}
	for _, tt := range tests {
		p := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":"*","Action":`+tt.action+`,"Resource":"*"}}`)
		if got := p.Evaluate(get("192.0.2.1")); got != tt.want {
			t.Errorf("Action %s: %v, want %v", tt.action, got, tt.want)
		}
	}
}

func TestNilPolicy(t *testing.T) {
	var p *Policy
	if got := p.Evaluate(Request{}); got != Allow {
		t.Errorf("nil policy: %v, want Allow", got)
	}
}

func TestStatements(t *testing.T) {
	if n := mustParse(t, notAction).Statements(); n != 4 {
		t.Errorf("Statements() = %d, want 4", n)
	}
}

func TestMessage(t *testing.T) {
	arn := ARN("us-east-1", "123456789012", "abc123", "prod", "GET", "/pets/7")
	if arn != "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/7" {
		t.Fatalf("ARN = %q", arn)
	}
	tests := []struct {
		d    Decision
		want string
	}{
		{ExplicitDeny, "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/7 with an explicit deny"},
		{ImplicitDeny, "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/7"},
		{Allow, ""},
	}
	for _, tt := range tests {
		if got := Message(tt.d, arn); got != tt.want {
			t.Errorf("Message(%v)\n got %q\nwant %q", tt.d, got, tt.want)
		}
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{Allow: "Allow", ImplicitDeny: "ImplicitDeny", ExplicitDeny: "ExplicitDeny", 7: "Decision(7)"} {
		if got := d.String(); got != want {
			t.Errorf("Decision(%d).String() = %q, want %q", int(d), got, want)
		}
	}
	var zero Decision
	if zero != ImplicitDeny {
		t.Errorf("the zero Decision is %v, want ImplicitDeny", zero)
	}
}

// benchPolicy is a realistic policy: an office allow list, a blocked range, a public health check
// and a private-API style tag rule.
const benchPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Office", "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"IpAddress": {"aws:SourceIp": [
       "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "192.0.2.0/24", "198.51.100.0/24",
       "203.0.113.0/25", "100.64.0.0/10", "2001:db8::/32", "2001:db8:1::/48", "fd00::/8"]}}},
    {"Sid": "Health", "Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/GET/health"},
    {"Sid": "Blocked", "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
     "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.128/25", "198.51.100.7"]}}},
    {"Sid": "Tagged", "Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "arn:aws:execute-api:*:*:*/admin/*",
     "Condition": {"StringNotLike": {"aws:SourceVpc": "vpc-0a*"}}}
  ]
}`

var sink Decision

func BenchmarkEvaluate(b *testing.B) {
	p := mustParse(b, benchPolicy)
	cases := []struct {
		name string
		req  Request
	}{
		{"allowed", req("172.20.1.1", "prod", "GET", "/pets/7", "")},
		{"implicit deny", req("8.8.8.8", "prod", "GET", "/pets/7", "")},
		{"explicit deny", req("192.0.2.200", "prod", "GET", "/pets/7", "")},
		{"IPv6", req("2001:db8:1::7", "prod", "POST", "/orders/12/items", "")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = p.Evaluate(c.req)
			}
		})
	}
}

func TestEvaluateAllocatesNothing(t *testing.T) {
	p := mustParse(t, benchPolicy)
	for _, r := range []Request{
		req("172.20.1.1", "prod", "GET", "/pets/7", ""),
		req("192.0.2.200", "admin", "GET", "/x", "vpc-9"),
		req("", "v1", "GET", "/health", "vpc-0abc"),
	} {
		if n := testing.AllocsPerRun(100, func() { sink = p.Evaluate(r) }); n != 0 {
			t.Errorf("Evaluate(%+v) allocates %v times", r, n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	doc := []byte(benchPolicy)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateLargest is the costliest policy the limits allow to evaluate by address: one
// statement with MaxAddresses blocks, none of which holds the caller.
func BenchmarkEvaluateLargest(b *testing.B) {
	var ips strings.Builder
	for i := range MaxAddresses {
		if i > 0 {
			ips.WriteByte(',')
		}
		fmt.Fprintf(&ips, `"::%x"`, i)
	}
	p := mustParse(b, `{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":[`+ips.String()+`]}}}}`)
	r := req("2001:db8::1", "prod", "GET", "/pets", "")
	b.ReportAllocs()
	for b.Loop() {
		sink = p.Evaluate(r)
	}
}
