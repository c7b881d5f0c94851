package gateway

import (
	"fmt"
	"testing"
)

// BenchmarkSetAPIs measures applying a changed set of APIs while the gateway runs: 10 HTTP APIs of
// 50 routes each, compiled into route tables and swapped in.
func BenchmarkSetAPIs(b *testing.B) {
	apis := make([]API, 10)
	for i := range apis {
		a := API{ID: fmt.Sprintf("api%d", i), EndpointID: fmt.Sprintf("%010d", i), Mount: fmt.Sprintf("/m%d", i),
			Stages: []Stage{{Name: DefaultStage}, {Name: "prod", Throttle: ThrottleSettings{Rate: 100, Burst: 100}}}}
		for r := range 50 {
			a.Routes = append(a.Routes, Route{Key: fmt.Sprintf("GET /r%d/{id}/items/{item}", r), Function: "f"})
		}
		apis[i] = a
	}
	s, err := New(Config{APIs: apis}, &fakeInvoker{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.SetAPIs(apis); err != nil {
			b.Fatal(err)
		}
	}
}
