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
		"Big":  json.RawMessage(`{"type":"array","items":{"type":"object","required":["a"],"properties":{"a":{"type":"integer"}}}}`),
		"Tree": json.RawMessage(`{"type":"object","properties":{"c":{"$ref":"#"}}}`),
	})
	for _, n := range []int{1000, 3000, 9000} {
		deep := strings.Repeat(`{"c":`, n) + `1` + strings.Repeat(`}`, n)
		t0 := time.Now()
		err := m.ValidateBody("Tree", []byte(deep))
		fmt.Println(n, "invalid", time.Since(t0), err != nil)
		deep = strings.Repeat(`{"c":`, n) + `{}` + strings.Repeat(`}`, n)
		t0 = time.Now()
		err = m.ValidateBody("Tree", []byte(deep))
		fmt.Println(n, "valid", time.Since(t0), err)
	}
	big := `[` + strings.Repeat(`{"a":"x"},{},`, 250000) + `{}]`
	t0 := time.Now()
	v, _ := unmarshalForProbe(big)
	fmt.Println("parse", time.Since(t0))
	t0 = time.Now()
	verr := m.schemas["Big"].Validate(v)
	fmt.Println("validate", time.Since(t0))
	t0 = time.Now()
	_ = verr.Error
	err := m.ValidateBody("Big", []byte(big))
	fmt.Println("all", time.Since(t0), len(err.Error()))
}
