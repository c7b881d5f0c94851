package reqvalidate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestProbe2(t *testing.T) {
	m, _ := Compile(map[string]json.RawMessage{
		"N":    json.RawMessage(`{"properties":{"i":{"type":"integer"},"m":{"minimum":5},"k":{"multipleOf":0.01},"e":{"enum":[1,2]}}}`),
		"Tree": json.RawMessage(`{"type":"object","properties":{"c":{"$ref":"#"}}}`),
		"Big":  json.RawMessage(`{"type":"array","items":{"type":"object","required":["a"],"properties":{"a":{"type":"integer"}}}}`),
	})
	for _, b := range []string{`{"i":1e999999999}`, `{"m":-1e999999999}`, `{"i":1e-999999999}`, `{"k":1e-999999999}`, `{"e":1e999999999}`, `{"m":0.1}`, `{"m":-12345678901234567890.125}`, `{"k":0.001}`, `{"m":1e-40}`} {
		t0 := time.Now()
		err := m.ValidateBody("N", []byte(b))
		fmt.Println(b, time.Since(t0), err)
	}
	for _, n := range []int{64} {
		chain := strings.Repeat(`{"c":`, n-1) + `1` + strings.Repeat(`}`, n-1)
		body := `{"c":[` + strings.Repeat(chain+",", (10<<20)/len(chain)-2) + chain + `]}`
		t0 := time.Now()
		err := m.ValidateBody("Tree", []byte(body))
		fmt.Println(n, len(body), time.Since(t0), len(err.Error()))
	}
	big := `[` + strings.Repeat(`{"a":"x"},{},`, 250000) + `{}]`
	t0 := time.Now()
	err := m.ValidateBody("Big", []byte(big))
	fmt.Println("all", time.Since(t0), len(err.Error()))
}
