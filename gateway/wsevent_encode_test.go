package gateway

import (
	"bytes"
	"testing"
	"time"
)

// checkEncodeWSEvent checks that the hand-written encoder writes what encoding/json writes for c.
func checkEncodeWSEvent(t *testing.T, c WSEventContext) {
	t.Helper()
	want, wantErr := buildWSEventJSON(&c)
	got, err := BuildWSEvent(c)
	if (err != nil) != (wantErr != nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("error %v, want %v", err, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("event\n got %s\nwant %s", got, want)
	}
}

func TestEncodeWSEvent(t *testing.T) {
	full := func(eventType, routeKey string) WSEventContext {
		c := wsTestContext(eventType, routeKey)
		c.Headers = map[string][]string{
			"Host":              {"dl7ptocha9.execute-api.local"},
			"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
			"x-custom":          {"a", "b"},
			"X-Empty":           {""},
			"X-None":            {},
			"X-Quote":           {"\"<é>\u2028\x00\xff"},
		}
		c.Query = map[string][]string{"token": {"abc"}, "tag": {"x", "y"}, "q": {"a b&c"}, "none": nil}
		c.Authorizer = map[string]any{"principalId": "user-1", "role": "<admin>", "n": 3, "nested": map[string]any{"a": []any{1, "b"}}}
		c.MessageID = "R1knPc2ntjMCFIA="
		c.Body = []byte(`{"action":"send","data":"<b>"}`)
		c.StatusCode, c.Reason = 1001, "going \"away\""
		return c
	}
	tests := []struct {
		name string
		c    WSEventContext
	}{
		{"connect", full(WSEventConnect, "$connect")},
		{"message", full(WSEventMessage, "send")},
		{"disconnect", full(WSEventDisconnect, "$disconnect")},
		{"bare connect", wsTestContext(WSEventConnect, "$connect")},
		{"bare message", wsTestContext(WSEventMessage, "$default")},
		{"bare disconnect", wsTestContext(WSEventDisconnect, "$disconnect")},
		{"empty values", func() WSEventContext {
			c := wsTestContext(WSEventConnect, "$connect")
			c.Headers = map[string][]string{"X-None": nil}
			c.Query = map[string][]string{}
			c.StageVariables = map[string]string{}
			c.Authorizer = map[string]any{}
			return c
		}()},
		{"binary message", func() WSEventContext {
			c := full(WSEventMessage, "$default")
			c.Binary = true
			return c
		}()},
		{"invalid UTF-8 message", func() WSEventContext {
			c := full(WSEventMessage, "$default")
			c.Body = []byte("a\xffb")
			return c
		}()},
		{"zero times", func() WSEventContext {
			c := full(WSEventConnect, "$connect")
			c.Time, c.ConnectedAt = time.Time{}, time.Time{}
			return c
		}()},
		{"negative epoch", func() WSEventContext {
			c := full(WSEventDisconnect, "$disconnect")
			c.Time = time.Date(1969, time.July, 20, 20, 17, 40, 0, time.FixedZone("X", -5*3600))
			c.StatusCode = -3
			return c
		}()},
		{"unencodable authorizer", func() WSEventContext {
			c := full(WSEventConnect, "$connect")
			c.Authorizer = map[string]any{"f": func() {}}
			return c
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.Time.IsZero() {
				// Both encoders read the clock: the same millisecond is likely, not certain.
				for range 10 {
					want, _ := buildWSEventJSON(&tc.c)
					got, _ := BuildWSEvent(tc.c)
					if bytes.Equal(got, want) {
						return
					}
				}
			}
			checkEncodeWSEvent(t, tc.c)
		})
	}
}

// FuzzEncodeWSEvent checks the hand-written encoder against encoding/json on events made of
// arbitrary strings.
func FuzzEncodeWSEvent(f *testing.F) {
	f.Add("$connect", "Host", "x.example", "q", "a b", "ua <x>", "body", 1001, int64(1795601100453), byte(0))
	f.Add("$default", "x", "é\u2028\x00\xff", "", "", "", "\xed\xa0\x80\"\\", -1, int64(-5), byte(0xff))
	f.Add("", "", "", "", "", "", "", 0, int64(0), byte(0x55))
	f.Fuzz(func(t *testing.T, routeKey, hkey, hvalue, qkey, qvalue, ua, body string, code int, ms int64, flags byte) {
		types := []string{WSEventConnect, WSEventMessage, WSEventDisconnect}
		c := wsTestContext(types[int(flags&3)%3], routeKey)
		c.Time = time.UnixMilli(ms)
		c.UserAgent, c.SourceIP, c.Reason, c.MessageID = ua, hvalue, body, qvalue
		c.Body, c.Binary, c.StatusCode = []byte(body), flags&4 != 0, code
		if flags&8 != 0 {
			c.Headers = map[string][]string{hkey: {hvalue, body}, hvalue: {hkey}, "Host": {"h"}}
		}
		if flags&16 != 0 {
			c.Query = map[string][]string{qkey: {qvalue}, qvalue: nil}
		}
		if flags&32 != 0 {
			c.StageVariables = map[string]string{hkey: body}
		} else {
			c.StageVariables = nil
		}
		if flags&64 != 0 {
			c.Authorizer = map[string]any{hkey: body, "n": code}
		}
		if flags&128 != 0 {
			c.ConnectedAt = time.Time{}
		}
		checkEncodeWSEvent(t, c)
	})
}

// BenchmarkEncodeWSEvent compares encoding/json ("json") with the hand-written encoder ("fast")
// on the $connect event of a browser's handshake.
func BenchmarkEncodeWSEvent(b *testing.B) {
	c := wsTestContext(WSEventConnect, "$connect")
	c.Headers = map[string][]string{
		"Host": {"dl7ptocha9.execute-api.local"}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-WebSocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-WebSocket-Version": {"13"},
		"User-Agent": {"Mozilla/5.0"}, "Origin": {"https://example.com"}, "Sec-WebSocket-Extensions": {"permessage-deflate; client_max_window_bits"},
	}
	c.Query = map[string][]string{"token": {"abc"}}
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := buildWSEventJSON(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := BuildWSEvent(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
