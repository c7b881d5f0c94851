package respolicy_test

import (
	"fmt"
	"net/netip"

	"gatehouse.dev/gatehouse/internal/respolicy"
)

// An IP allow list, as API Gateway's documentation writes it, evaluated for a caller inside it and
// one outside.
func Example() {
	p, err := respolicy.Parse([]byte(`{
	  "Version": "2012-10-17",
	  "Statement": [{
	    "Effect": "Allow",
	    "Principal": "*",
	    "Action": "execute-api:Invoke",
	    "Resource": "execute-api:/*",
	    "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.2/32", "192.0.2.0/24"]}}
	  }]
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	arn := respolicy.ARN("us-east-1", "000000000000", "abc123", "prod", "GET", "/pets")
	for _, ip := range []string{"192.0.2.10", "127.0.0.3"} {
		d := p.Evaluate(respolicy.Request{SourceIP: netip.MustParseAddr(ip), MethodARN: arn})
		fmt.Printf("%s: %v %q\n", ip, d, respolicy.Message(d, arn))
	}
	// Output:
	// 192.0.2.10: Allow ""
	// 127.0.0.3: ImplicitDeny "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:abc123/prod/GET/pets"
}

// A condition Gatehouse cannot evaluate is refused, never ignored.
func ExampleParse_unsupported() {
	_, err := respolicy.Parse([]byte(`{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "*",
	  "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-123"}}}}`))
	fmt.Println(err)
	// Output:
	// resource policy: Statement.Condition.StringEquals.aws:PrincipalOrgID: the condition key "aws:PrincipalOrgID" cannot be evaluated here; the keys evaluated here are aws:SourceIp (with IpAddress, NotIpAddress), and aws:SourceVpc and aws:SourceVpce (with StringEquals, StringNotEquals, StringLike, StringNotLike)
}
