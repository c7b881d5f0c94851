package respolicy

import (
	"errors"
	"net/netip"
	"testing"
)

// FuzzParse parses random documents and evaluates those that parse against random requests: neither
// may panic, a refusal must be an *Error with a sentinel, and evaluation must not depend on
// anything but the request.
func FuzzParse(f *testing.F) {
	for _, doc := range []string{
		allowList, denyList, officeOnly, ipv6, resources, publicHealth, notAction, andOr, privateAPI,
		endpoints, literal, allowAll, benchPolicy,
		``, `{}`, `[]`, `{"Statement":[]}`, `{"Statement":{}}`, `{"Statement":[[[[[[[[[]]]]]]]]]}`,
		`{"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddressIfExists":{"aws:SourceIp":"::/0"}}}}`,
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"*","Resource":"*"}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:0.0.0.0/96"}}}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:SourceVpc":"*?*?*?"}}}}`,
	} {
		f.Add([]byte(doc), []byte{10, 1, 2, 3}, "prod/GET/pets/7", "vpc-1")
	}
	f.Fuzz(func(t *testing.T, doc, ip []byte, rest, vpc string) {
		p, err := Parse(doc)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("Parse error %T %v is not an *Error with a sentinel", err, err)
			}
			return
		}
		addr, _ := netip.AddrFromSlice(ip)
		reqs := []Request{
			{SourceIP: addr, MethodARN: testAPI + "/" + rest, SourceVPC: vpc},
			{SourceIP: addr, MethodARN: rest, SourceVPC: vpc},
			{MethodARN: testAPI + "/prod/GET/"},
			{SourceIP: netip.MustParseAddr("::ffff:10.0.0.1"), MethodARN: "arn:aws:execute-api:r:a:i/s/M/p"},
		}
		for _, r := range reqs {
			d := p.Evaluate(r)
			if d != Allow && d != ImplicitDeny && d != ExplicitDeny {
				t.Fatalf("Evaluate(%+v) = %v", r, d)
			}
			if again := p.Evaluate(r); again != d {
				t.Fatalf("Evaluate(%+v) = %v, then %v", r, d, again)
			}
			_ = Message(d, r.MethodARN)
		}
	})
}
