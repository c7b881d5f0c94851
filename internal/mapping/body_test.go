package mapping

import (
	"strings"
	"testing"
)

func TestBodyValue(t *testing.T) {
	const doc = `{
		"user": {"id": "u7", "age": 42, "admin": true, "score": -1.5e3, "tags": ["a", "b"], "none": null},
		"items": [{"name": "pen", "n": 1}, {"name": "ink", "n": 2}, [10, [20, 21]]],
		"esc": "line\nnext \"q\" \u00e9",
		"a\u0062": "escaped key",
		"dup": 1, "dup": 2,
		"nested": {"x": {"y": {"z": "deep"}}},
		"obj": { "k" : [ 1 , 2 ] , "s" : "a b" },
		"emptyObj": {}, "emptyArr": [],
		"dotted.key": "unreachable",
		"": "empty key"
	}`
	tests := []struct {
		path   string
		want   string
		wantOK bool
	}{
		{"user.id", "u7", true},
		{"user.age", "42", true},
		{"user.admin", "true", true},
		{"user.score", "-1.5e3", true},
		{"user.tags", `["a","b"]`, true},
		{"user.tags[1]", "b", true},
		{"user.tags[2]", "", false},
		{"user.none", "", false},
		{"user.missing", "", false},
		{"items[0].name", "pen", true},
		{"items[1].n", "2", true},
		{"items[2][1][0]", "20", true},
		{"items[2][1]", "[20,21]", true},
		{"items[3]", "", false},
		{"items.name", "", false},
		{"user[0]", "", false},
		{"user.id.x", "", false},
		{"esc", "line\nnext \"q\" é", true},
		{"ab", "escaped key", true},
		{"dup", "2", true},
		{"nested.x.y.z", "deep", true},
		{"nested.x", `{"y":{"z":"deep"}}`, true},
		{"obj", `{"k":[1,2],"s":"a b"}`, true},
		{"emptyObj", "{}", true},
		{"emptyArr", "[]", true},
		{"emptyArr[0]", "", false},
		{"emptyObj.a", "", false},
		{"dotted.key", "", false},
		{"", "", true}, // checked below: the whole document, compact
		{"a..b", "", false},
		{".user", "", false},
		{"user.", "", false},
		{"items[x]", "", false},
		{"items[0", "", false},
		{"items[]", "", false},
		{"items[9999999999]", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, ok := BodyValue([]byte(doc), tt.path)
			if tt.path == "" {
				if !ok || !strings.HasPrefix(got, `{"user":{"id":"u7"`) || strings.ContainsAny(got, "\n\t") {
					t.Fatalf("whole document = %q, %v", got, ok)
				}
				return
			}
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("BodyValue(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBodyValueDocuments(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	justFits := `{"a":"` + strings.Repeat("x", MaxBodyBytes-len(`{"a":""}`)) + `"}`
	tests := []struct {
		name   string
		body   string
		path   string
		want   string
		wantOK bool
	}{
		{"array document", `[{"id":1},{"id":2}]`, "[1].id", "2", true},
		{"string document", `"hi"`, "", "hi", true},
		{"number document", ` 7 `, "", "7", true},
		{"null document", `null`, "", "", false},
		{"empty body", ``, "a", "", false},
		{"not JSON", `a=1&b=2`, "a", "", false},
		{"truncated JSON", `{"a":1,`, "a", "", false},
		{"trailing garbage", `{"a":1} x`, "a", "", false},
		{"two documents", `{"a":1}{"a":2}`, "a", "", false},
		{"over 100 KB", big, "a", "", false},
		{"exactly 100 KB", justFits, "a", strings.Repeat("x", MaxBodyBytes-len(`{"a":""}`)), true},
		{"invalid UTF-8 string", "{\"a\":\"x\xffy\"}", "a", "x\uFFFDy", true},
		{"escaped slash", `{"a":"\/"}`, "a", "/", true},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, "a", "😀", true},
		{"key with bracket", `{"a]":1}`, "a]", "", false},
		{"deep nesting", strings.Repeat("[", 500) + strings.Repeat("]", 500), "[0][0]", "[" + strings.Repeat("[", 497) + strings.Repeat("]", 497) + "]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := BodyValue([]byte(tt.body), tt.path)
			if got != tt.want || ok != tt.wantOK {
				t.Fatalf("BodyValue(%.40q, %q) = %.40q, %v; want %.40q, %v", tt.body, tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBodyValueAllocations(t *testing.T) {
	body := []byte(`{"user":{"id":"u7","tags":["a","b"]},"n":12}`)
	if n := testing.AllocsPerRun(100, func() { BodyValue(body, "user.tags[1]") }); n > 1 {
		t.Errorf("%v allocations, want at most 1", n)
	}
}

func BenchmarkBodyValue(b *testing.B) {
	body := []byte(`{"user":{"id":"u7","name":"Alice","roles":["admin","dev"]},"items":[` +
		strings.Repeat(`{"name":"pen","price":1.5,"tags":["a","b"]},`, 100) + `{"name":"last"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		BodyValue(body, "items[100].name")
	}
}
