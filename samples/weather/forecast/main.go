// Command forecast is a stand-in forecast service for the weather sample: GET
// /v1/forecast?city=NAME answers {"city", "tempC", "summary"}, the same every time for a city. It
// listens on 127.0.0.1:9090, or the address given as its argument.
package main

import (
	"encoding/json"
	"hash/fnv"
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := "127.0.0.1:9090"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	http.HandleFunc("GET /v1/forecast", func(w http.ResponseWriter, r *http.Request) {
		city := strings.TrimSpace(r.URL.Query().Get("city"))
		if city == "" {
			http.Error(w, `{"message":"city is required"}`, http.StatusBadRequest)
			return
		}
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(city)))
		n := h.Sum32()
		summaries := []string{"sunny", "cloudy", "rain", "snow", "windy"}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"city": city, "tempC": float64(int(n%400))/10 - 10, "summary": summaries[n%uint32(len(summaries))]})
	})
	log.Printf("forecast service on http://%s/v1/forecast?city=oslo", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
