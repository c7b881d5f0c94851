// Command weather is a sample of outbound HTTP: GET /weather/{city} asks a forecast service for the
// city's weather with plain net/http and answers what it said. The service is WEATHER_API (in the
// function's environment); the stack file allows the function to reach it, and nothing else
// (allowedOutboundHosts). samples/weather/forecast is such a service, to run beside it.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"gatehouse.dev/gatehouse/runtimes/sdk"
	_ "gatehouse.dev/gatehouse/runtimes/sdk/sdkhttp" // net/http's requests go out through Gatehouse
)

type forecast struct {
	City    string  `json:"city"`
	TempC   float64 `json:"tempC"`
	Summary string  `json:"summary"`
}

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	city := req.PathParameters["city"]
	u := os.Getenv("WEATHER_API") + "/v1/forecast?city=" + url.QueryEscape(city)
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return answer(500, map[string]string{"message": err.Error()})
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		// Not allowed, unreachable or too slow: the message says which.
		return answer(502, map[string]string{"message": "the forecast service did not answer: " + err.Error()})
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answer(502, map[string]string{"message": fmt.Sprintf("the forecast service answered %s", resp.Status)})
	}
	var f forecast
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		return answer(502, map[string]string{"message": "the forecast service's answer is not a forecast"})
	}
	return answer(200, map[string]any{"city": f.City, "temperature": fmt.Sprintf("%.1f °C", f.TempC), "summary": f.Summary})
}

func answer(status int, body any) (events.APIGatewayV2HTTPResponse, error) {
	b, err := json.Marshal(body)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"content-type": "application/json"}, Body: string(b)}, err
}

func main() { sdk.Start(handle) }
