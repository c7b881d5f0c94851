package gateway

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// checkFastResponse fails t unless parseFunctionResponseFast declines payload or gives exactly
// what parseFunctionResponseJSON gives, and parseFunctionResponse gives that too, errors
// included. It returns whether the fast parser took the payload.
func checkFastResponse(t *testing.T, payload []byte) bool {
	t.Helper()
	want, wantErr := parseFunctionResponseJSON(payload)
	got, gotErr := parseFunctionResponse(payload)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotErr, wantErr) {
		t.Fatalf("parseFunctionResponse(%q) =\n%s, %v\nencoding/json gives\n%s, %v",
			payload, describeResponse(got), gotErr, describeResponse(want), wantErr)
	}
	fast, ok := parseFunctionResponseFast(bytes.TrimSpace(payload))
	if !ok {
		return false
	}
	if wantErr != nil {
		t.Fatalf("fast parser took %q, which encoding/json refuses: %v", payload, wantErr)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast parser gives for %q\n%s\nencoding/json gives\n%s", payload, describeResponse(fast), describeResponse(want))
	}
	return true
}

// describeResponse shows a parsed response with nil and empty slices told apart.
func describeResponse(r *functionResponse) string {
	if r == nil {
		return "nil"
	}
	return fmt.Sprintf("status %d headers %#v cookies %#v contentType %q body %#v base64 %q",
		r.status, r.headers, r.cookies, r.contentType, r.body, r.base64)
}

func TestParseFunctionResponseFast(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		fast    bool // whether the fast parser must take it (it must decline every error)
	}{
		// The common shapes.
		{"hello", `{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"Hello, world"}`, true},
		{"Go SDK", `{"statusCode":200,"headers":{"content-type":"application/json"},"multiValueHeaders":null,"body":"{\"message\":\"hello from gatehouse\"}","cookies":null}`, true},
		{"cookies and headers", `{"statusCode":302,"headers":{"Location":"/x","X-B":"2","Cache-Control":"no-store","X-A":"1"},"cookies":["a=1; Path=/","b=2; HttpOnly"],"body":""}`, true},
		{"spaces", " \n{ \"statusCode\" : 201 ,\t\"headers\" : { \"a\" : \"b\" , \"c\" : 1 } , \"cookies\" : [ \"x=1\" , \"y=2\" ] , \"body\" : \"hi\" }\r\n", true},
		{"only statusCode", `{"statusCode":204}`, true},
		{"statusCode 599", `{"statusCode":599}`, true},
		{"nulls are absent", `{"statusCode":404,"headers":null,"cookies":null,"body":null,"isBase64Encoded":null}`, true},
		{"empty headers and cookies", `{"statusCode":200,"headers":{},"cookies":[]}`, true},
		{"base64", `{"statusCode":200,"headers":{"content-type":"application/octet-stream"},"body":"AP8Q","isBase64Encoded":true}`, true},
		{"base64 empty", `{"statusCode":200,"isBase64Encoded":true}`, true},
		{"base64 with newlines", `{"statusCode":200,"body":"AP\n8Q","isBase64Encoded":true}`, true},
		{"base64 false", `{"statusCode":200,"body":"AP8Q","isBase64Encoded":false}`, true},
		{"number and bool header values", `{"statusCode":200,"headers":{"X-Count":3,"X-Ratio":-1.5e3,"X-Zero":0,"X-E":1E+2,"X-On":true,"X-Off":false}}`, true},
		{"dropped headers", `{"statusCode":200,"headers":{"Content-Length":"9","TE":"x","Trailer":"x","UPGRADE":"x","Connection":"x","Keep-Alive":"x","Proxy-Connection":"x","Transfer-Encoding":"x","apigw-requestid":"x","X-Kept":"y"}}`, true},
		{"only dropped headers", `{"statusCode":200,"headers":{"Content-Length":"9"}}`, true},
		{"content types differing in case", `{"statusCode":200,"headers":{"content-type":"b","Content-Type":"a","CONTENT-TYPE":"c"}}`, true},
		{"multiValueHeaders ignored", `{"statusCode":200,"multiValueHeaders":{"X-Multi":["a","b"]},"body":"x"}`, true},
		{"unknown keys of every kind", `{"statusCode":200,"a":[1,{"b":[true,false,null,"\u00e9\ud83d\ude00"]}],"StatusCode":"x","Body":1,"e":-0.5e-7}`, true},
		{"escapes in body", `{"statusCode":200,"body":"a\"b\\c\/d\be\ff\ng\rh\ti\u0041\u00e9\u20ac\ud83d\ude00\u003c"}`, true},
		{"lone surrogates in body", `{"statusCode":200,"body":"\ud800 \udc00 \ud800\ud800 \ud800\u0041 \ud800x \udbff\udfff"}`, true},
		{"U+FFFD escaped and raw", `{"statusCode":200,"body":"\ufffd�"}`, true},
		{"UTF-8 body", `{"statusCode":200,"body":"héllo wörld ☃ 😀"}`, true},
		{"escaped header value", `{"statusCode":200,"headers":{"x":"a\tb\u00e9"}}`, true},
		{"inferred object", `{"message":"hello","n":[1,2,3]}`, true},
		{"inferred empty object", `{}`, true},
		{"inferred with known keys of any type", `{"body":5,"headers":"x","cookies":{},"isBase64Encoded":"no"}`, true},
		{"statusCode key is case-sensitive", `{"StatusCode":200,"statuscode":404}`, true},

		// The fast parser declines these; encoding/json decides.
		{"escaped statusCode key", `{"status\u0043ode":200}`, false},
		{"escaped unknown key", `{"a\nb":1}`, false},
		{"repeated statusCode", `{"statusCode":500,"statusCode":200}`, false},
		{"repeated body", `{"statusCode":200,"body":"a","body":"b"}`, false},
		{"repeated header name", `{"statusCode":200,"headers":{"a":"1","a":"2"}}`, false},
		{"escaped header name", `{"statusCode":200,"headers":{"Content\u002dType":"text/plain"}}`, false},
		{"invalid UTF-8 in body", "{\"statusCode\":200,\"body\":\"a\xffb\"}", false},
		{"invalid UTF-8 in unknown key", "{\"statusCode\":200,\"\xff\":1}", true},
		{"encoded surrogate in body", "{\"statusCode\":200,\"body\":\"\xed\xa0\x80\"}", false},
		{"null cookie", `{"statusCode":200,"cookies":[null]}`, false},
		{"deep nesting", `{"statusCode":200,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
		{"deep nesting inferred", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, false},
		{"string", `"hi"`, false},
		{"array", `[1,2]`, false},
		{"number", `42`, false},
		{"null", `null`, false},
		{"vertical tab around", "\v{\"statusCode\":200}\u00a0", true},

		// Malformed: the fast parser must decline, encoding/json gives the error.
		{"empty", ``, false},
		{"truncated", `{"statusCode":200`, false},
		{"truncated string", `{"statusCode":200,"body":"ab`, false},
		{"trailing garbage", `{"statusCode":200} x`, false},
		{"two objects", `{}{}`, false},
		{"trailing comma", `{"statusCode":200,}`, false},
		{"missing colon", `{"statusCode" 200}`, false},
		{"single quotes", `{'statusCode':200}`, false},
		{"control character in string", "{\"statusCode\":200,\"body\":\"a\nb\"}", false},
		{"bad escape", `{"statusCode":200,"body":"\x41"}`, false},
		{"short \\u", `{"statusCode":200,"body":"\u12"}`, false},
		{"bad literal", `{"statusCode":200,"x":tru}`, false},
		{"bad number", `{"statusCode":200,"x":01}`, false},
		{"bad fraction", `{"statusCode":200,"x":1.}`, false},
		{"bad exponent", `{"statusCode":200,"x":1e}`, false},
		{"lone minus", `{"statusCode":200,"x":-}`, false},
		{"statusCode 200.0", `{"statusCode":200.0}`, false},
		{"statusCode 2e2", `{"statusCode":2e2}`, false},
		{"statusCode 1e2", `{"statusCode":1e2}`, false},
		{"statusCode string", `{"statusCode":"200"}`, false},
		{"statusCode negative", `{"statusCode":-200}`, false},
		{"statusCode huge", `{"statusCode":99999999999999999999999}`, false},
		{"statusCode 199", `{"statusCode":199}`, false},
		{"statusCode 600", `{"statusCode":600}`, false},
		{"statusCode 1000", `{"statusCode":1000}`, false},
		{"statusCode null", `{"statusCode":null}`, false},
		{"statusCode true", `{"statusCode":true}`, false},
		{"headers string", `{"statusCode":200,"headers":"x"}`, false},
		{"header value null", `{"statusCode":200,"headers":{"a":null}}`, false},
		{"header value object", `{"statusCode":200,"headers":{"a":{}}}`, false},
		{"header value CRLF", `{"statusCode":200,"headers":{"a":"b\r\nX-Evil: 1"}}`, false},
		{"header value DEL", "{\"statusCode\":200,\"headers\":{\"a\":\"b\x7f\"}}", false},
		{"header name with space", `{"statusCode":200,"headers":{"bad name":"x"}}`, false},
		{"header name non-ASCII", `{"statusCode":200,"headers":{"é":"x"}}`, false},
		{"empty header name", `{"statusCode":200,"headers":{"":"x"}}`, false},
		{"cookies string", `{"statusCode":200,"cookies":"a=1"}`, false},
		{"cookie number", `{"statusCode":200,"cookies":[1]}`, false},
		{"cookie with newline", `{"statusCode":200,"cookies":["a=1\nb"]}`, false},
		{"body object", `{"statusCode":200,"body":{"a":1}}`, false},
		{"body number", `{"statusCode":200,"body":1}`, false},
		{"isBase64Encoded string", `{"statusCode":200,"body":"","isBase64Encoded":"true"}`, false},
		{"isBase64Encoded number", `{"statusCode":200,"isBase64Encoded":1}`, false},
		{"invalid base64", `{"statusCode":200,"body":"!!!","isBase64Encoded":true}`, false},
		{"base64 missing padding", `{"statusCode":200,"body":"AP8","isBase64Encoded":true}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if took := checkFastResponse(t, []byte(tt.payload)); took != tt.fast {
				t.Errorf("fast parser took it: %v, want %v", took, tt.fast)
			}
		})
	}
}

// fastResponseSeeds are outputs of every shape for FuzzParseFunctionResponse.
var fastResponseSeeds = []string{
	`{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"Hello, world"}`,
	`{"statusCode":200,"headers":{"content-type":"application/json"},"multiValueHeaders":null,"body":"{\"message\":\"hi\"}","cookies":null}`,
	`{"statusCode":302,"headers":{"Location":"/x","X-B":"2","X-A":1.5,"X-On":true},"cookies":["a=1; Path=/","b=2"],"body":""}`,
	" {\"statusCode\" : 201 , \"headers\" : { \"a\" : \"b\" } , \"cookies\" : [ \"x\" ] }\n",
	`{"statusCode":204}`,
	`{"statusCode":404,"headers":null,"cookies":null,"body":null,"isBase64Encoded":null}`,
	`{"statusCode":200,"headers":{},"cookies":[]}`,
	`{"statusCode":200,"body":"AP8Q","isBase64Encoded":true}`,
	`{"statusCode":200,"body":"AP8","isBase64Encoded":true}`,
	`{"statusCode":200,"body":"AP8Q","isBase64Encoded":false}`,
	`{"statusCode":200,"headers":{"Content-Length":"9","te":"x","content-type":"b","Content-Type":"a"}}`,
	`{"statusCode":200,"multiValueHeaders":{"X":["a"]},"x":[1,{"y":null}],"StatusCode":1}`,
	`{"statusCode":200,"body":"a\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00\ud800\udc00x\udc00\ud800\u0041"}`,
	"{\"statusCode\":200,\"body\":\"h\u00e9llo \xff \xed\xa0\x80 \xef\xbf\xbd\"}",
	`{"statusCode":200,"headers":{"x":"a\tb","y":"a\u0000b","z":"\u007f"}}`,
	`{"message":"hello"}`, `{}`, `{"body":5}`, `"hi"`, `[1]`, `null`, `42`, ``, `{`,
	`{"status\u0043ode":200}`, `{"statusCode":500,"statusCode":200}`,
	`{"statusCode":200,"headers":{"a":"1","a":"2"}}`, `{"statusCode":200,"headers":{"Content\u002dType":"x"}}`,
	`{"statusCode":200,"cookies":[null,"a"]}`,
	`{"statusCode":200.0}`, `{"statusCode":"200"}`, `{"statusCode":1e2}`, `{"statusCode":-200}`,
	`{"statusCode":99999999999999999999}`, `{"statusCode":null}`, `{"statusCode":199}`, `{"statusCode":600}`,
	`{"statusCode":200,"headers":{"a":null}}`, `{"statusCode":200,"headers":{"bad name":"x"}}`,
	`{"statusCode":200,"body":{"a":1}}`, `{"statusCode":200,"isBase64Encoded":"true"}`,
	`{"statusCode":200} x`, `{"statusCode":200,}`, "\v{\"statusCode\":200}\u00a0",
}

// FuzzParseFunctionResponse checks that the hand-written parser gives what encoding/json gives.
func FuzzParseFunctionResponse(f *testing.F) {
	for _, s := range fastResponseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkFastResponse(t, payload)
	})
}

// BenchmarkParseFunctionResponse compares encoding/json ("json") with the hand-written parser
// ("fast", through parseFunctionResponse) on typical outputs.
func BenchmarkParseFunctionResponse(b *testing.B) {
	payloads := []struct{ name, payload string }{
		{"hello", `{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"Hello, world"}`},
		{"json-body", `{"statusCode":200,"headers":{"content-type":"application/json"},"multiValueHeaders":null,` +
			`"body":"{\"id\":42,\"name\":\"Ada Lovelace\",\"tags\":[\"math\",\"engines\"],\"note\":\"\u003cb\u003e1843\u003c/b\u003e\"}","cookies":null}`},
		{"cookies-headers", `{"statusCode":302,"headers":{"Location":"/account","Cache-Control":"no-store","Content-Type":"text/html; charset=utf-8",` +
			`"X-Request-Id":"c0ffee","Vary":"Cookie"},"cookies":["session=abc123; Path=/; HttpOnly; Secure","theme=dark; Path=/; Max-Age=31536000"],"body":"<a href=\"/account\">Found</a>"}`},
	}
	parsers := []struct {
		name  string
		parse func([]byte) (*functionResponse, error)
	}{
		{"json", parseFunctionResponseJSON},
		{"fast", parseFunctionResponse},
	}
	for _, p := range payloads {
		for _, parser := range parsers {
			b.Run(p.name+"/"+parser.name, func(b *testing.B) {
				payload := []byte(p.payload)
				b.ReportAllocs()
				b.SetBytes(int64(len(payload)))
				for b.Loop() {
					if _, err := parser.parse(payload); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
