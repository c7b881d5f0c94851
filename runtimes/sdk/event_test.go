package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Events as the gateway builds them (gateway.BuildEvent and gateway.BuildWSEvent).
var (
	v2RequestPOST       = `{"version":"2.0","routeKey":"POST /pets/{id}","rawPath":"/dev/pets/42","rawQueryString":"q=caf%C3%A9&tag=a&tag=b&x=1+2","cookies":["session=abc123","theme=\"dark\"","lang=en"],"headers":{"accept":"application/json, text/plain, */*","accept-language":"en-US,en;q=0.9","authorization":"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x","content-length":"59","content-type":"application/json; charset=utf-8","host":"example.com","user-agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","x-forwarded-for":"203.0.113.7","x-forwarded-proto":"http","x-multi":"1,2"},"queryStringParameters":{"q":"café","tag":"a,b","x":"1 2"},"pathParameters":{"id":"42"},"stageVariables":{"env":"dev"},"body":"{\"name\":\"rex\",\"note\":\"line1\\nline2 \\\"quoted\\\" é 😀 <b>\"}","isBase64Encoded":false,"requestContext":{"routeKey":"POST /pets/{id}","accountId":"000000000000","stage":"dev","requestId":"JybD68rLhgQ4wik=","apiId":"a1b2c3d4e5","domainName":"a1b2c3d4e5.execute-api.local","domainPrefix":"a1b2c3d4e5","time":"12/Mar/2020:18:03:58 +0000","timeEpoch":1584036238123,"http":{"method":"POST","path":"/dev/pets/42","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}}}`
	v2RequestGET        = `{"version":"2.0","routeKey":"GET /hello","rawPath":"/hello","rawQueryString":"","headers":{"content-length":"0","host":"example.com","x-forwarded-for":"203.0.113.7","x-forwarded-proto":"http"},"isBase64Encoded":false,"requestContext":{"routeKey":"GET /hello","accountId":"000000000000","stage":"$default","requestId":"kJ5BTV8CpWf2ymc=","apiId":"a1b2c3d4e5","domainName":"a1b2c3d4e5.execute-api.local","domainPrefix":"a1b2c3d4e5","time":"12/Mar/2020:18:03:58 +0000","timeEpoch":1584036238123,"http":{"method":"GET","path":"/hello","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":""}}}`
	v2RequestBinary     = `{"version":"2.0","routeKey":"$default","rawPath":"/upload","rawQueryString":"","headers":{"content-length":"3","content-type":"application/octet-stream","host":"example.com","x-forwarded-for":"203.0.113.7","x-forwarded-proto":"http"},"body":"AAH/","isBase64Encoded":true,"requestContext":{"routeKey":"$default","accountId":"000000000000","stage":"$default","requestId":"WS47eYsusEPqdGk=","apiId":"a1b2c3d4e5","domainName":"a1b2c3d4e5.execute-api.local","domainPrefix":"a1b2c3d4e5","time":"12/Mar/2020:18:03:58 +0000","timeEpoch":1584036238123,"http":{"method":"PUT","path":"/upload","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":""}}}`
	v2RequestJWT        = `{"version":"2.0","routeKey":"GET /me","rawPath":"/me","rawQueryString":"","headers":{"authorization":"Bearer x","host":"example.com"},"requestContext":{"routeKey":"GET /me","accountId":"000000000000","stage":"$default","requestId":"r1","authorizer":{"jwt":{"claims":{"sub":"user-1","scope":"read write"},"scopes":["read","write"]}},"apiId":"api","domainName":"example.com","domainPrefix":"example","time":"12/Mar/2020:18:03:58 +0000","timeEpoch":1584036238123,"http":{"method":"GET","path":"/me","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"curl/8.5.0"}},"isBase64Encoded":false}`
	v2RequestLambdaAuth = `{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"","headers":{},"requestContext":{"authorizer":{"lambda":{"user":"u","n":1.5,"ok":true,"list":[1,"a",null],"obj":{"k":{}}}},"authentication":{"clientCert":{"clientCertPem":"-----BEGIN CERTIFICATE-----","subjectDN":"CN=a","issuerDN":"CN=b","serialNumber":"1","validity":{"notBefore":"x","notAfter":"y"}}},"http":{"method":"GET","path":"/"}},"isBase64Encoded":false}`
	wsConnect           = `{"headers":{"Host":"dl7ptocha9.execute-api.local","Sec-WebSocket-Key":"dGhlIHNhbXBsZSBub25jZQ==","X-Multi":"b"},"multiValueHeaders":{"Host":["dl7ptocha9.execute-api.local"],"Sec-WebSocket-Key":["dGhlIHNhbXBsZSBub25jZQ=="],"X-Multi":["a","b"]},"queryStringParameters":{"room":"lobby","t":"2"},"multiValueQueryStringParameters":{"room":["lobby"],"t":["1","2"]},"stageVariables":{"env":"prod"},"requestContext":{"routeKey":"$connect","authorizer":{"n":3,"principalId":"user-1"},"eventType":"CONNECT","extendedRequestId":"R1knPH17NjMFftw=","requestTime":"25/Nov/2026:10:05:00 +0000","messageDirection":"IN","stage":"prod","connectedAt":1795601097419,"requestTimeEpoch":1795601100453,"identity":{"userAgent":"Mozilla/5.0 <test> & co","sourceIp":"203.0.113.7"},"requestId":"R1knPH17NjMFftw=","domainName":"dl7ptocha9.execute-api.local","connectionId":"R1kmxc2VNjMCFIA=","apiId":"dl7ptocha9"},"isBase64Encoded":false}`
	wsMessage           = `{"stageVariables":{"env":"prod"},"requestContext":{"routeKey":"$default","messageId":"R1kn4cAnNjMCFxg=","eventType":"MESSAGE","extendedRequestId":"R1knPH17NjMFftw=","requestTime":"25/Nov/2026:10:05:00 +0000","messageDirection":"IN","stage":"prod","connectedAt":1795601097419,"requestTimeEpoch":1795601100453,"identity":{"userAgent":"Mozilla/5.0 <test> & co","sourceIp":"203.0.113.7"},"requestId":"R1knPH17NjMFftw=","domainName":"dl7ptocha9.execute-api.local","connectionId":"R1kmxc2VNjMCFIA=","apiId":"dl7ptocha9"},"body":"{\"action\":\"send\",\"text\":\"hi \\\"there\\\" \\u2028\"}","isBase64Encoded":false}`
	wsDisconnect        = `{"stageVariables":{"env":"prod"},"requestContext":{"routeKey":"$disconnect","disconnectStatusCode":1001,"eventType":"DISCONNECT","extendedRequestId":"R1knPH17NjMFftw=","requestTime":"25/Nov/2026:10:05:00 +0000","messageDirection":"IN","disconnectReason":"going away","stage":"prod","connectedAt":1795601097419,"requestTimeEpoch":1795601100453,"identity":{"userAgent":"Mozilla/5.0 <test> & co","sourceIp":"203.0.113.7"},"requestId":"R1knPH17NjMFftw=","domainName":"dl7ptocha9.execute-api.local","connectionId":"R1kmxc2VNjMCFIA=","apiId":"dl7ptocha9"},"isBase64Encoded":false}`
)

var v2RequestSeeds = []string{v2RequestPOST, v2RequestGET, v2RequestBinary, v2RequestJWT, v2RequestLambdaAuth}

var wsRequestSeeds = []string{wsConnect, wsMessage, wsDisconnect}

// checkDecode decodes in with decodeEvent and with encoding/json into zero values of T, and fails
// unless both succeed with equal results or both fail. For the types with a fast path, it also checks
// the fast path without shared strings (as for large events).
func checkDecode[T any](t *testing.T, in []byte) {
	t.Helper()
	var got, want T
	err := decodeEvent(in, &got)
	wantErr := json.Unmarshal(in, &want)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json error %v", in, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\ngot  %#v\nwant %#v", in, got, want)
	}
	var unshared T
	d := eventDecoder{b: in}
	ok := false
	switch p := any(&unshared).(type) {
	case *events.APIGatewayV2HTTPRequest:
		ok = d.v2Request(p) && d.end()
	case *events.APIGatewayWebsocketProxyRequest:
		ok = d.wsRequest(p) && d.end()
	}
	if ok && (wantErr != nil || !reflect.DeepEqual(unshared, want)) {
		t.Fatalf("%q: without shared strings:\ngot  %#v\nwant %#v (error %v)", in, unshared, want, wantErr)
	}
}

// fastV2 reports whether the fast path decodes in on its own.
func fastV2(in string) bool {
	var e events.APIGatewayV2HTTPRequest
	d := newEventDecoder([]byte(in))
	return d.v2Request(&e) && d.end()
}

func fastWS(in string) bool {
	var e events.APIGatewayWebsocketProxyRequest
	d := newEventDecoder([]byte(in))
	return d.wsRequest(&e) && d.end()
}

func TestDecodeV2Request(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fast bool // the fast path handles it
	}{
		{"post", v2RequestPOST, true},
		{"get", v2RequestGET, true},
		{"binary", v2RequestBinary, true},
		{"jwt", v2RequestJWT, true},
		{"lambda authorizer and authentication", v2RequestLambdaAuth, true},
		{"empty", `{}`, true},
		{"spaces", " \t\r\n{ \"version\" : \"2.0\" , \"headers\" : { \"a\" : \"b\" } , \"cookies\" : [ \"c\" , \"d\" ] }\n", true},
		{"escapes", `{"body":"\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00","rawPath":"/a\u0000b"}`, true},
		{"lone surrogates", `{"body":"\ud83d x \ude00 \ud83d\u0041 \udbff\udfff \ud800\ud800\udc00"}`, true},
		{"invalid utf-8", "{\"body\":\"a\xffb\xc3\x28\xed\xa0\x80\xf0\x9f\x98\",\"headers\":{\"k\xfe\":\"v\"}}", true},
		{"valid utf-8", `{"body":"café 😀 �"}`, true},
		{"escaped key", `{"rawP\u0061th":"/x","headers":{"\u0041":"\u0042"}}`, true},
		{"nulls", `{"version":null,"cookies":null,"headers":null,"queryStringParameters":{"a":null},"requestContext":null,"isBase64Encoded":null,"body":null}`, true},
		{"null members", `{"requestContext":{"timeEpoch":null,"http":null,"authorizer":null,"authentication":null},"cookies":[null,"a"]}`, true},
		{"empty collections", `{"cookies":[],"headers":{},"pathParameters":{},"stageVariables":{}}`, true},
		{"duplicate map keys", `{"headers":{"a":"1","a":"2","b":"x","b":null}}`, true},
		{"unknown members", `{"x":{"a":[1,-2.5e+3,true,false,null,{"b":"\u1234\""}]},"requestContext":{"y":[],"http":{"z":0}},"routeKeyy":"","":1}`, true},
		{"negative epoch", `{"requestContext":{"timeEpoch":-12}}`, true},
		{"big epoch", `{"requestContext":{"timeEpoch":9223372036854775807}}`, true},
		{"min epoch", `{"requestContext":{"timeEpoch":-9223372036854775808}}`, true},
		{"zero epoch", `{"requestContext":{"timeEpoch":-0}}`, true},
		{"base64 true", `{"isBase64Encoded":true}`, true},
		{"large", `{"version":"2.0","body":"` + strings.Repeat("x", maxSharedEvent) + `","headers":{"a":"b"}}`, true},

		{"top-level null", `null`, false},
		{"case-insensitive key", `{"Version":"2.0","RAWPATH":"/x"}`, false},
		{"case-insensitive nested key", `{"requestContext":{"HTTP":{"Method":"GET"}}}`, false},
		{"unicode-folded key", `{"İsBase64Encoded":true}`, false},
		{"kelvin key", `{"requestContext":{"http":{"userAgent":"a"},"domainPrefi\u212a":"x"}}`, false},
		{"duplicate member", `{"version":"1","version":"2"}`, false},
		{"duplicate with null", `{"version":"1","version":null}`, false},
		{"duplicate cookies", `{"cookies":["a","b"],"cookies":[null]}`, false},
		{"duplicate headers", `{"headers":{"a":"1"},"headers":{"b":"2"}}`, false},
		{"duplicate context", `{"requestContext":{"stage":"a"},"requestContext":{"apiId":"b"}}`, false},
		{"fraction epoch", `{"requestContext":{"timeEpoch":1.0}}`, false},
		{"exponent epoch", `{"requestContext":{"timeEpoch":1e3}}`, false},
		{"overflow epoch", `{"requestContext":{"timeEpoch":9223372036854775808}}`, false},
		{"string epoch", `{"requestContext":{"timeEpoch":"1"}}`, false},
		{"number string", `{"version":2}`, false},
		{"object string", `{"body":{}}`, false},
		{"string bool", `{"isBase64Encoded":"true"}`, false},
		{"number header", `{"headers":{"a":1}}`, false},
		{"array headers", `{"headers":[]}`, false},
		{"bad authorizer", `{"requestContext":{"authorizer":{"jwt":{"claims":{"a":1}}}}}`, false},
		{"trailing data", `{}x`, false},
		{"two values", `{} {}`, false},
		{"trailing comma", `{"version":"2.0",}`, false},
		{"missing colon", `{"version" "2.0"}`, false},
		{"unterminated", `{"version":"2.0"`, false},
		{"unterminated string", `{"version":"2.0`, false},
		{"control char", "{\"body\":\"a\nb\"}", false},
		{"bad escape", `{"body":"\x"}`, false},
		{"short unicode escape", `{"body":"\u12"}`, false},
		{"bad skipped escape", `{"x":"\q"}`, false},
		{"bad skipped number", `{"x":01}`, false},
		{"bad skipped number 2", `{"x":1.}`, false},
		{"bad skipped number 3", `{"x":-}`, false},
		{"bad skipped literal", `{"x":nul}`, false},
		{"deep", `{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, false},
		{"deep ok", `{"x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`, false},
		{"bom", "\ufeff{}", false},
		{"empty input", ``, false},
		{"array", `[]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode[events.APIGatewayV2HTTPRequest](t, []byte(tt.in))
			if got := fastV2(tt.in); got != tt.fast {
				t.Errorf("fast path handles it: %v, want %v", got, tt.fast)
			}
		})
	}
}

func TestDecodeWebsocketRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fast bool
	}{
		{"connect", wsConnect, true},
		{"message", wsMessage, true},
		{"disconnect", wsDisconnect, true},
		{"empty", `{}`, true},
		{"multi-value nulls", `{"multiValueHeaders":{"a":null,"b":[],"c":[null,"x"]},"multiValueQueryStringParameters":null}`, true},
		{"message id kinds", `{"requestContext":{"messageId":12.5}}`, true},
		{"message id object", `{"requestContext":{"messageId":{"a":[1]}}}`, true},
		{"message id null", `{"requestContext":{"messageId":null,"authorizer":null,"disconnectReason":null}}`, true},
		{"identity", `{"requestContext":{"identity":{"cognitoIdentityPoolId":"a","accountId":"b","cognitoIdentityId":"c","caller":"d","apiKey":"e","apiKeyId":"f","accessKey":"g","sourceIp":"h","cognitoAuthenticationType":"i","cognitoAuthenticationProvider":"j","userArn":"k","userAgent":"l","user":"m","clientCert":{"clientCertPem":"p","validity":{"notAfter":"n"}}}}}`, true},
		{"identity null", `{"requestContext":{"identity":null}}`, true},
		{"all context", `{"requestContext":{"accountId":"a","resourceId":"b","stage":"c","requestId":"d","resourcePath":"e","httpMethod":"f","apiId":"g","connectedAt":1,"connectionId":"h","domainName":"i","error":"j","eventType":"k","extendedRequestId":"l","integrationLatency":"m","messageDirection":"n","requestTime":"o","requestTimeEpoch":2,"routeKey":"p","status":"q","disconnectStatusCode":3,"disconnectReason":""}}`, true},
		{"all top", `{"resource":"r","path":"p","httpMethod":"GET","headers":{"a":"b"},"queryStringParameters":{"c":"d"},"pathParameters":{"e":"f"},"stageVariables":{"g":"h"},"body":"x","isBase64Encoded":true}`, true},

		{"case-insensitive", `{"RequestContext":{}}`, false},
		{"case-insensitive identity", `{"requestContext":{"identity":{"SourceIP":"x"}}}`, false},
		{"bad disconnect reason", `{"requestContext":{"disconnectReason":1}}`, false},
		{"bad multi value", `{"multiValueHeaders":{"a":"b"}}`, false},
		{"bad multi value element", `{"multiValueHeaders":{"a":[1]}}`, false},
		{"duplicate", `{"requestContext":{"connectionId":"a","connectionId":"b"}}`, false},
		{"bad message id", `{"requestContext":{"messageId":[1,]}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode[events.APIGatewayWebsocketProxyRequest](t, []byte(tt.in))
			if got := fastWS(tt.in); got != tt.fast {
				t.Errorf("fast path handles it: %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestDecodeOtherTypes checks that other event types still go through encoding/json.
func TestDecodeOtherTypes(t *testing.T) {
	checkDecode[map[string]any](t, []byte(v2RequestPOST))
	checkDecode[events.APIGatewayProxyRequest](t, []byte(v2RequestPOST))
	checkDecode[*events.APIGatewayV2HTTPRequest](t, []byte(v2RequestPOST))
	checkDecode[string](t, []byte(`"x"`))
}

func TestEncodeResponse(t *testing.T) {
	tests := []any{
		events.APIGatewayV2HTTPResponse{},
		events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/json"}, Body: `{"message":"hello from gatehouse"}`},
		events.APIGatewayV2HTTPResponse{
			StatusCode:        -301,
			Headers:           map[string]string{"b": "2", "a": "1", "": "", "<&>": "\u2028\u2029"},
			MultiValueHeaders: map[string][]string{"set-cookie": {"a=1", "b=2"}, "x": nil, "y": {}},
			Body:              "\x00\x1f\"\\/\b\f\n\r\t<>&\x7f é \xff \xed\xa0\x80 😀 \ufffd",
			IsBase64Encoded:   true,
			Cookies:           []string{"a=1; Path=/", ""},
		},
		events.APIGatewayV2HTTPResponse{Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}, Cookies: []string{}},
		&events.APIGatewayV2HTTPResponse{StatusCode: 204},
		(*events.APIGatewayV2HTTPResponse)(nil),
		events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"a": "b"}, MultiValueHeaders: map[string][]string{"c": {"d"}}, Body: "x", IsBase64Encoded: true},
		events.APIGatewayProxyResponse{},
		&events.APIGatewayProxyResponse{StatusCode: 500},
		(*events.APIGatewayProxyResponse)(nil),
		map[string]string{"message": "hi"},
		"plain",
	}
	for _, r := range tests {
		got, err := appendResponse(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%#v:\ngot  %s\nwant %s", r, got, want)
		}
	}
}

func FuzzDecodeV2Request(f *testing.F) {
	for _, s := range v2RequestSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"body":"\ud83d\ude00\u00e9\\\"","headers":{"\u0041":null},"cookies":[null]}`))
	f.Add([]byte(`{"Version":"x","requestContext":{"timeEpoch":1e3}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode[events.APIGatewayV2HTTPRequest](t, in)
	})
}

func FuzzDecodeWebsocketRequest(f *testing.F) {
	for _, s := range wsRequestSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"multiValueHeaders":{"a":null,"b":[],"c":[null,"x"]},"requestContext":{"messageId":1,"disconnectReason":null}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode[events.APIGatewayWebsocketProxyRequest](t, in)
	})
}

// FuzzEncodeV2Response builds responses from the fuzzer's strings (NUL separates keys, values and
// cookies; bits of shape pick nil or empty maps and slices) and compares them with json.Marshal.
func FuzzEncodeV2Response(f *testing.F) {
	f.Add(200, `{"message":"hello from gatehouse"}`, "content-type\x00application/json", "", false, uint8(0))
	f.Add(302, "", "location\x00/x?a=1&b=<2>\x00x-a\x00\u2028", "a=1; Path=/\x00b=\xff", true, uint8(7))
	f.Add(-1, "\x00\x1f\"\\\xed\xa0\x80", "\x00", "\x00", false, uint8(2))
	// Eight headers (sorted on the stack, out of order here) and nine (sorted the other way).
	f.Add(200, "", "h\x001\x00b\x002\x00g\x003\x00a\x004\x00f\x005\x00c\x006\x00e\x007\x00d\x008", "", false, uint8(0))
	f.Add(200, "", "i\x001\x00h\x002\x00g\x003\x00f\x004\x00e\x005\x00d\x006\x00c\x007\x00b\x008\x00a\x009", "", false, uint8(0))
	f.Fuzz(func(t *testing.T, status int, body, headers, cookies string, b64 bool, shape uint8) {
		r := events.APIGatewayV2HTTPResponse{StatusCode: status, Body: body, IsBase64Encoded: b64}
		if headers != "" || shape&1 != 0 {
			r.Headers = map[string]string{}
			r.MultiValueHeaders = map[string][]string{}
			kv := strings.Split(headers, "\x00")
			for i := 0; i+1 < len(kv); i += 2 {
				r.Headers[kv[i]] = kv[i+1]
				r.MultiValueHeaders[kv[i+1]] = append(r.MultiValueHeaders[kv[i+1]], kv[i])
			}
			if shape&4 != 0 {
				r.MultiValueHeaders["nil"] = nil
			}
		}
		if cookies != "" {
			r.Cookies = strings.Split(cookies, "\x00")
		} else if shape&2 != 0 {
			r.Cookies = []string{}
		}
		for _, v := range []any{r, events.APIGatewayProxyResponse{StatusCode: r.StatusCode, Headers: r.Headers, MultiValueHeaders: r.MultiValueHeaders, Body: r.Body, IsBase64Encoded: r.IsBase64Encoded}} {
			got, err := appendResponse(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		}
	})
}

func BenchmarkDecodeV2Request(b *testing.B) {
	in := []byte(v2RequestPOST)
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e events.APIGatewayV2HTTPRequest
			if err := decodeEvent(in, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(in, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeWebsocketRequest(b *testing.B) {
	in := []byte(wsMessage)
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e events.APIGatewayWebsocketProxyRequest
			if err := decodeEvent(in, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(in, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncodeV2Response(b *testing.B) {
	r := events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"content-type": "application/json", "cache-control": "no-store", "x-request-id": "Mc7UVioPPHcEKPA="},
		Body:       `{"message":"hello from gatehouse","items":[{"id":1,"name":"rex"},{"id":2,"name":"fido"}]}`,
		Cookies:    []string{"session=abc123; Path=/; HttpOnly"},
	}
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendResponse(nil, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
