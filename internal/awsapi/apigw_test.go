package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	gwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/smithy-go"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/gateway"
	"gatehouse.dev/gatehouse/internal/apistore"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix/jstest"
)

// apiNode is an AWS API server with API Gateway's calls, its API store and a gateway that serves
// what the store holds, in this process: enough to make APIs with the SDK and call their routes.
type apiNode struct {
	gw         *apigatewayv2.Client
	store      *apistore.Store
	gatewayURL string
}

// startAPINode starts an apiNode on loopback ports; everything stops when the test ends. Every
// function name is taken to exist.
func startAPINode(t *testing.T) *apiNode {
	t.Helper()
	ctx := context.Background()
	_, js := jstest.Connect(t, jstest.Start(t, ""))
	reg, err := functions.OpenRegistry(ctx, js, functions.RegistryConfig{Stack: "t"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := apistore.Open(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	resources, err := OpenAPIResources(ctx, js, "t")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gwLn := listen(t)
	go func() { _ = gw.Serve(gwLn) }()
	t.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	// The node's watch of the store, reduced to this: every applied change is served at once.
	applied := func(ctx context.Context, _ string, _ uint64) error {
		records, err := store.List(ctx, nil)
		if err != nil {
			return err
		}
		var apis []gateway.API
		for _, r := range records {
			apis = append(apis, gateway.FromSpec(r.ID, r.API))
		}
		return gw.SetAPIs(apis)
	}
	key := sigv4.Credentials{AccessKeyID: "AKIAGATEHOUSETEST01", SecretAccessKey: "test-secret-key-of-forty-characters-000"}
	srv, err := New(Config{Keys: []sigv4.Credentials{key}, Registry: reg, APIs: &APIStore{
		Store: store, Stack: "t", Resources: resources, Applied: applied, GatewayURL: "http://" + gwLn.Addr().String(),
		Env: func(context.Context) (spec.Env, error) {
			return spec.Env{HasFunction: func(string) bool { return true }}, nil
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	awsLn := listen(t)
	go func() { _ = srv.Serve(awsLn) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	cfg := aws.Config{Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}, nil
		})}
	client := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = aws.String("http://" + awsLn.Addr().String()) })
	return &apiNode{gw: client, store: store, gatewayURL: "http://" + gwLn.Addr().String()}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// record is the stored definition of the API with id.
func (n *apiNode) record(t *testing.T, id string) apistore.Record {
	t.Helper()
	records, err := n.store.List(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no stored definition of API %s", id)
	return apistore.Record{}
}

// route is the stored route key of the API with id.
func (n *apiNode) route(t *testing.T, id, key string) spec.Route {
	t.Helper()
	for _, rt := range n.record(t, id).API.Routes {
		if rt.Key == key {
			return rt
		}
	}
	t.Fatalf("API %s has no route %s", id, key)
	return spec.Route{}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// echoBackend answers every request with what it received as JSON, and 404 under /v1/missing.
func echoBackend(t *testing.T) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", "echo")
		if strings.HasPrefix(r.URL.Path, "/v1/missing") {
			w.WriteHeader(http.StatusNotFound)
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "from": r.Header.Get("X-From")})
	}))
	t.Cleanup(b.Close)
	return b
}

// TestHTTPProxyIntegration makes an HTTP API with an HTTP_PROXY integration to a local backend
// through the SDK, and calls its route through the gateway: the request reaches the backend with
// its parameter mappings applied, and the answer comes back with its own. The integration reads
// back as it was made, a TLS server name and an AWS_PROXY integration with payload format 1.0
// reach the stored definition, and the export imports as an API that serves the same.
func TestHTTPProxyIntegration(t *testing.T) {
	n := startAPINode(t)
	backend := echoBackend(t)
	ctx := context.Background()
	api, err := n.gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("shop"), ProtocolType: gwtypes.ProtocolTypeHttp})
	if err != nil {
		t.Fatalf("CreateApi: %v", err)
	}
	reqParams := map[string]string{"overwrite:header.x-from": "gatehouse", "append:querystring.stage": "$context.stage"}
	respParams := map[string]map[string]string{"404": {"overwrite:statuscode": "410"}, "200": {"overwrite:header.x-answered": "yes"}}
	integ, err := n.gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId,
		IntegrationType: gwtypes.IntegrationTypeHttpProxy, IntegrationUri: aws.String(backend.URL + "/v1/{proxy}"),
		IntegrationMethod: aws.String("ANY"), PayloadFormatVersion: aws.String("1.0"), TimeoutInMillis: aws.Int32(5000),
		RequestParameters: reqParams, ResponseParameters: respParams})
	if err != nil {
		t.Fatalf("CreateIntegration HTTP_PROXY: %v", err)
	}
	if _, err := n.gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("ANY /shop/{proxy+}"),
		Target: aws.String("integrations/" + aws.ToString(integ.IntegrationId))}); err != nil {
		t.Fatalf("CreateRoute: %v", err)
	}
	if _, err := n.gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}

	endpoint := aws.ToString(api.ApiEndpoint)
	r := get(t, endpoint+"/prod/shop/items/7?color=red")
	var seen map[string]string
	if err := json.Unmarshal([]byte(r.body), &seen); err != nil || r.status != 200 {
		t.Fatalf("GET through the gateway: %d %q %v", r.status, r.body, err)
	}
	if seen["method"] != "GET" || seen["path"] != "/v1/items/7" || seen["from"] != "gatehouse" || seen["query"] != "color=red&stage=prod" {
		t.Errorf("the backend received %v", seen)
	}
	if r.header.Get("X-Answered") != "yes" || r.header.Get("X-Backend") != "echo" {
		t.Errorf("the answer's headers: %v", r.header)
	}
	if r := get(t, endpoint+"/prod/shop/missing"); r.status != 410 {
		t.Errorf("a backend's 404 under responseParameters' overwrite:statuscode 410: %d %s", r.status, r.body)
	}

	got, err := n.gw.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: api.ApiId, IntegrationId: integ.IntegrationId})
	if err != nil {
		t.Fatalf("GetIntegration: %v", err)
	}
	if got.IntegrationType != gwtypes.IntegrationTypeHttpProxy || aws.ToString(got.IntegrationUri) != backend.URL+"/v1/{proxy}" ||
		aws.ToString(got.IntegrationMethod) != "ANY" || aws.ToString(got.PayloadFormatVersion) != "1.0" || aws.ToInt32(got.TimeoutInMillis) != 5000 ||
		got.RequestParameters["overwrite:header.x-from"] != "gatehouse" || got.ResponseParameters["404"]["overwrite:statuscode"] != "410" {
		t.Errorf("GetIntegration: %+v", got)
	}

	// A TLS server name, set by UpdateIntegration, reads back and reaches the stored definition.
	secure, err := n.gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId,
		IntegrationType: gwtypes.IntegrationTypeHttpProxy, IntegrationUri: aws.String("https://${stageVariables.backend}/{proxy}"),
		IntegrationMethod: aws.String("get")})
	if err != nil {
		t.Fatalf("CreateIntegration (https): %v", err)
	}
	if _, err := n.gw.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{ApiId: api.ApiId, IntegrationId: secure.IntegrationId,
		TlsConfig: &gwtypes.TlsConfigInput{ServerNameToVerify: aws.String("orders.internal")}}); err != nil {
		t.Fatalf("UpdateIntegration with TlsConfig: %v", err)
	}
	if got, err := n.gw.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: api.ApiId, IntegrationId: secure.IntegrationId}); err != nil ||
		got.TlsConfig == nil || aws.ToString(got.TlsConfig.ServerNameToVerify) != "orders.internal" || aws.ToString(got.IntegrationMethod) != "GET" ||
		aws.ToString(got.PayloadFormatVersion) != "1.0" {
		t.Errorf("GetIntegration with TlsConfig: %+v %v", got, err)
	}
	if _, err := n.gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /orders/{proxy+}"),
		Target: aws.String("integrations/" + aws.ToString(secure.IntegrationId))}); err != nil {
		t.Fatalf("CreateRoute (https): %v", err)
	}
	if in := n.route(t, aws.ToString(api.ApiId), "GET /orders/{proxy+}").Integration; in.Type != spec.IntegrationHTTPProxy ||
		in.Method != "GET" || in.TLS == nil || in.TLS.ServerName != "orders.internal" || in.PayloadFormatVersion != "" {
		t.Errorf("the stored https integration: %+v", in)
	}

	// AWS_PROXY with payload format 1.0, and a response mapping.
	legacy, err := n.gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId,
		IntegrationType: gwtypes.IntegrationTypeAwsProxy, IntegrationUri: aws.String("arn:aws:lambda:us-east-1:000000000000:function:legacy"),
		IntegrationMethod: aws.String("POST"), PayloadFormatVersion: aws.String("1.0"),
		ResponseParameters: map[string]map[string]string{"200": {"append:header.x-served-by": "gatehouse"}}})
	if err != nil {
		t.Fatalf("CreateIntegration AWS_PROXY 1.0: %v", err)
	}
	if _, err := n.gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("POST /legacy"),
		Target: aws.String("integrations/" + aws.ToString(legacy.IntegrationId))}); err != nil {
		t.Fatalf("CreateRoute (legacy): %v", err)
	}
	if in := n.route(t, aws.ToString(api.ApiId), "POST /legacy").Integration; in.Type != spec.IntegrationFunction || in.Target != "legacy" ||
		in.PayloadFormatVersion != spec.PayloadFormat1 || in.ResponseParameters["200"]["append:header.x-served-by"] != "gatehouse" {
		t.Errorf("the stored AWS_PROXY 1.0 integration: %+v", in)
	}
	if got, err := n.gw.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: api.ApiId, IntegrationId: legacy.IntegrationId}); err != nil ||
		aws.ToString(got.PayloadFormatVersion) != "1.0" || got.IntegrationMethod != nil || got.ResponseParameters["200"]["append:header.x-served-by"] != "gatehouse" {
		t.Errorf("GetIntegration AWS_PROXY 1.0: %+v %v", got, err)
	}

	// Exported and imported again, the API proxies as before.
	exported, err := n.gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: api.ApiId, Specification: aws.String("OAS30"), OutputType: aws.String("JSON")})
	if err != nil || !strings.Contains(string(exported.Body), `"http_proxy"`) || !strings.Contains(string(exported.Body), `"serverNameToVerify": "orders.internal"`) {
		t.Fatalf("ExportApi: %s %v", exported.Body, err)
	}
	imported, err := n.gw.ImportApi(ctx, &apigatewayv2.ImportApiInput{Body: aws.String(string(exported.Body))})
	if err != nil {
		t.Fatalf("ImportApi: %v", err)
	}
	if _, err := n.gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: imported.ApiId, StageName: aws.String("$default")}); err != nil {
		t.Fatalf("CreateStage on the imported API: %v", err)
	}
	r = get(t, aws.ToString(imported.ApiEndpoint)+"/shop/items/8")
	if err := json.Unmarshal([]byte(r.body), &seen); err != nil || r.status != 200 || seen["path"] != "/v1/items/8" || seen["from"] != "gatehouse" ||
		seen["query"] != "stage=%24default" || r.header.Get("X-Answered") != "yes" {
		t.Errorf("GET the imported API: %d %v %v", r.status, seen, r.header)
	}
	items, err := n.gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: imported.ApiId})
	if err != nil || len(items.Items) != 3 {
		t.Fatalf("GetIntegrations of the imported API: %+v %v", items, err)
	}
	types := map[gwtypes.IntegrationType]int{}
	for _, it := range items.Items {
		types[it.IntegrationType]++
	}
	if types[gwtypes.IntegrationTypeHttpProxy] != 2 || types[gwtypes.IntegrationTypeAwsProxy] != 1 {
		t.Errorf("the imported API's integration types: %v", types)
	}
}

// TestMockIntegrationImported imports an OpenAPI document with a mock integration in REST APIs'
// form: the route answers from the gateway, GetIntegration shows a MOCK integration that
// UpdateIntegration may give a new timeout, and the route Gatehouse cannot serve is a warning.
func TestMockIntegrationImported(t *testing.T) {
	n := startAPINode(t)
	ctx := context.Background()
	const doc = `openapi: 3.0.1
info: {title: status, version: "1"}
paths:
  /status:
    get:
      x-amazon-apigateway-integration:
        type: mock
        requestTemplates: {application/json: '{"statusCode": 503}'}
        responses:
          default:
            statusCode: "503"
            responseParameters: {method.response.header.Retry-After: "'120'"}
            responseTemplates: {application/json: '{"status": "down"}'}
  /private:
    get:
      x-amazon-apigateway-integration: {type: http_proxy, connectionType: VPC_LINK, connectionId: abc, uri: 'arn:aws:elasticloadbalancing:x'}
`
	api, err := n.gw.ImportApi(ctx, &apigatewayv2.ImportApiInput{Body: aws.String(doc)})
	if err != nil {
		t.Fatalf("ImportApi: %v", err)
	}
	if len(api.Warnings) != 1 || !strings.Contains(api.Warnings[0], "GET /private: private integrations (connectionType VPC_LINK) are not served locally: the route is skipped") {
		t.Errorf("ImportApi's warnings: %q", api.Warnings)
	}
	if _, err := n.gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("$default")}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if r := get(t, aws.ToString(api.ApiEndpoint)+"/status"); r.status != 503 || r.header.Get("Retry-After") != "120" || r.body != `{"status": "down"}` {
		t.Errorf("GET the mock: %d %v %q", r.status, r.header, r.body)
	}
	items, err := n.gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: api.ApiId})
	if err != nil || len(items.Items) != 1 || items.Items[0].IntegrationType != gwtypes.IntegrationTypeMock ||
		items.Items[0].RequestTemplates["application/json"] != `{"statusCode": 503}` {
		t.Fatalf("GetIntegrations: %+v %v", items, err)
	}
	id := items.Items[0].IntegrationId
	if _, err := n.gw.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{ApiId: api.ApiId, IntegrationId: id, TimeoutInMillis: aws.Int32(2000)}); err != nil {
		t.Fatalf("UpdateIntegration of the mock's timeout: %v", err)
	}
	if in := n.route(t, aws.ToString(api.ApiId), "GET /status").Integration; in.Type != spec.IntegrationMock || in.StatusCode != 503 ||
		in.Timeout.D() != 2*time.Second || in.Headers["Retry-After"] != "120" {
		t.Errorf("the stored mock: %+v", in)
	}
	if r := get(t, aws.ToString(api.ApiEndpoint)+"/status"); r.status != 503 {
		t.Errorf("GET the mock after UpdateIntegration: %d", r.status)
	}
}

// TestIntegrationBadRequests checks that integrations Gatehouse cannot serve are refused with
// BadRequestException and a message that says why.
func TestIntegrationBadRequests(t *testing.T) {
	n := startAPINode(t)
	ctx := context.Background()
	httpAPI, err := n.gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("h"), ProtocolType: gwtypes.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	wsAPI, err := n.gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("w"), ProtocolType: gwtypes.ProtocolTypeWebsocket,
		RouteSelectionExpression: aws.String("$request.body.action")})
	if err != nil {
		t.Fatal(err)
	}
	fn := aws.String("arn:aws:lambda:us-east-1:000000000000:function:f")
	tests := []struct {
		name string
		in   apigatewayv2.CreateIntegrationInput
		want string
	}{
		{"load balancer", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy, IntegrationMethod: aws.String("ANY"),
			IntegrationUri: aws.String("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/a/b/c"), PayloadFormatVersion: aws.String("1.0")},
			"an HTTP_PROXY integration's URI is the backend's URL"},
		{"vpc link", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy, IntegrationMethod: aws.String("ANY"),
			IntegrationUri: aws.String("http://backend"), ConnectionType: gwtypes.ConnectionTypeVpcLink, ConnectionId: aws.String("abc")},
			`ConnectionType "VPC_LINK": private integrations (VPC links) are not served`},
		{"proxy payload 2.0", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy,
			IntegrationUri: aws.String("http://backend"), PayloadFormatVersion: aws.String("2.0")},
			`PayloadFormatVersion "2.0": HTTP_PROXY integrations take 1.0`},
		{"proxy method", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy,
			IntegrationUri: aws.String("http://backend"), IntegrationMethod: aws.String("FETCH")},
			`IntegrationMethod "FETCH": want ANY`},
		{"function payload", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
			IntegrationUri: fn, PayloadFormatVersion: aws.String("3.0")},
			`PayloadFormatVersion "3.0": an AWS_PROXY integration takes 1.0 or 2.0`},
		{"function request mapping", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
			IntegrationUri: fn, PayloadFormatVersion: aws.String("2.0"), RequestParameters: map[string]string{"overwrite:header.x": "y"}},
			"RequestParameters are served on HTTP_PROXY integrations"},
		{"bad mapping", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy,
			IntegrationUri: aws.String("http://backend"), RequestParameters: map[string]string{"overwrite:body.x": "y"}},
			`requestParameters["overwrite:body.x"]`},
		{"bad status", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy,
			IntegrationUri: aws.String("http://backend"), ResponseParameters: map[string]map[string]string{"2xx": {"overwrite:statuscode": "200"}}},
			`responseParameters["2xx"]`},
		{"mock", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeMock},
			"IntegrationType MOCK: HTTP APIs have no mock integrations on AWS"},
		{"rest http", apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttp, IntegrationUri: aws.String("http://backend")},
			`IntegrationType "HTTP" is not served: use AWS_PROXY (a function) or HTTP_PROXY (a backend's URL)`},
		{"websocket proxy", apigatewayv2.CreateIntegrationInput{ApiId: wsAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeHttpProxy,
			IntegrationUri: aws.String("http://backend"), IntegrationMethod: aws.String("POST")},
			"HTTP_PROXY integrations are served in HTTP APIs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.gw.CreateIntegration(ctx, &tt.in)
			if errorCode(err) != "BadRequestException" || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want BadRequestException saying %q", err, tt.want)
			}
		})
	}

	// Changing a function's integration into a proxy without a URL of its own is refused, and
	// leaves it as it was.
	it, err := n.gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
		IntegrationUri: fn, PayloadFormatVersion: aws.String("1.0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.gw.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationId: it.IntegrationId,
		IntegrationType: gwtypes.IntegrationTypeHttpProxy}); errorCode(err) != "BadRequestException" || !strings.Contains(err.Error(), "backend's URL") {
		t.Errorf("UpdateIntegration to HTTP_PROXY without a URL: %v", err)
	}
	if got, err := n.gw.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: httpAPI.ApiId, IntegrationId: it.IntegrationId}); err != nil ||
		got.IntegrationType != gwtypes.IntegrationTypeAwsProxy || aws.ToString(got.PayloadFormatVersion) != "1.0" {
		t.Errorf("after a refused update: %+v %v", got, err)
	}
	// With one, it becomes a proxy, with the proxy's payload format.
	if got, err := n.gw.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{ApiId: httpAPI.ApiId, IntegrationId: it.IntegrationId,
		IntegrationType: gwtypes.IntegrationTypeHttpProxy, IntegrationUri: aws.String("http://backend/{proxy}")}); err != nil ||
		got.IntegrationType != gwtypes.IntegrationTypeHttpProxy || aws.ToString(got.PayloadFormatVersion) != "1.0" || aws.ToString(got.IntegrationMethod) != "ANY" {
		t.Errorf("UpdateIntegration to HTTP_PROXY: %+v %v", got, err)
	}
}

// TestStackFileIntegrations reads a stack file's API with every kind of integration through the
// SDK: GetIntegrations describes each as API Gateway would, and ExportApi writes them all.
func TestStackFileIntegrations(t *testing.T) {
	n := startAPINode(t)
	ctx := context.Background()
	const def = `type: http
routes:
  ANY /users/{proxy+}:
    integration:
      type: http_proxy
      target: https://users.internal/{proxy}
      tls: {serverName: users.internal}
      requestParameters:
        overwrite:header.x-from: gatehouse
  POST /legacy:
    integration: {type: function, target: legacy, payloadFormatVersion: "1.0", timeout: 3s}
  GET /ping:
    integration: {type: mock, statusCode: 204, headers: {x-pong: "yes"}}
`
	api, err := stackfileAPI(def)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.store.Put(ctx, apistore.Record{Name: "web", ManagedBy: apistore.ManagedByStackFile, Source: "gatehouse.yaml", UpdatedAt: time.Now(), API: api}, 0); err != nil {
		t.Fatal(err)
	}
	id := apistore.ID("t", "web")
	items, err := n.gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(id)})
	if err != nil || len(items.Items) != 3 {
		t.Fatalf("GetIntegrations: %+v %v", items, err)
	}
	byType := map[gwtypes.IntegrationType]gwtypes.Integration{}
	for _, it := range items.Items {
		byType[it.IntegrationType] = it
	}
	if p := byType[gwtypes.IntegrationTypeHttpProxy]; aws.ToString(p.IntegrationUri) != "https://users.internal/{proxy}" || aws.ToString(p.IntegrationMethod) != "ANY" ||
		p.TlsConfig == nil || aws.ToString(p.TlsConfig.ServerNameToVerify) != "users.internal" || p.RequestParameters["overwrite:header.x-from"] != "gatehouse" {
		t.Errorf("the http_proxy integration: %+v", p)
	}
	if f := byType[gwtypes.IntegrationTypeAwsProxy]; aws.ToString(f.PayloadFormatVersion) != "1.0" || aws.ToInt32(f.TimeoutInMillis) != 3000 ||
		aws.ToString(f.IntegrationUri) != "arn:aws:lambda:us-east-1:000000000000:function:legacy" {
		t.Errorf("the function integration: %+v", f)
	}
	if m := byType[gwtypes.IntegrationTypeMock]; m.RequestTemplates["application/json"] != `{"statusCode": 204}` {
		t.Errorf("the mock integration: %+v", m)
	}
	out, err := n.gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: aws.String(id), Specification: aws.String("OAS30"), OutputType: aws.String("JSON")})
	if err != nil {
		t.Fatalf("ExportApi: %v", err)
	}
	for _, want := range []string{`"type": "http_proxy"`, `"serverNameToVerify": "users.internal"`, `"type": "mock"`, `"method.response.header.x-pong": "'yes'"`, `"payloadFormatVersion": "1.0"`} {
		if !strings.Contains(string(out.Body), want) {
			t.Errorf("the export has no %s:\n%s", want, out.Body)
		}
	}
}

// stackfileAPI reads one API definition as the stack file writes it, every function existing.
func stackfileAPI(def string) (spec.API, error) {
	return stackfile.ParseAPI("api.yaml", []byte(def), "", "web", spec.Env{HasFunction: func(string) bool { return true }})
}

// TestRESTAPIsNotInV2 checks that API Gateway v2 neither lists nor finds the stack's REST APIs,
// which are API Gateway v1's, while it shows its HTTP APIs; and that ImportApi makes an HTTP API of
// a document that would otherwise read as a REST API's.
func TestRESTAPIsNotInV2(t *testing.T) {
	n := startAPINode(t)
	ctx := context.Background()
	for name, def := range map[string]string{
		"shop": "type: rest\nroutes:\n  GET /orders:\n    function: orders\n",
		"web":  "type: http\nroutes:\n  GET /orders:\n    function: orders\n",
	} {
		api, err := stackfile.ParseAPI("api.yaml", []byte(def), "", name, spec.Env{HasFunction: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.store.Put(ctx, apistore.Record{Name: name, ManagedBy: apistore.ManagedByStackFile, Source: "gatehouse.yaml", UpdatedAt: time.Now(), API: api}, 0); err != nil {
			t.Fatal(err)
		}
	}
	apis, err := n.gw.GetApis(ctx, &apigatewayv2.GetApisInput{})
	if err != nil {
		t.Fatalf("GetApis: %v", err)
	}
	var names []string
	for _, a := range apis.Items {
		names = append(names, aws.ToString(a.Name))
	}
	if len(names) != 1 || names[0] != "web" {
		t.Errorf("GetApis lists %q, want only the HTTP API web", names)
	}
	if _, err := n.gw.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: aws.String(apistore.ID("t", "web"))}); err != nil {
		t.Errorf("GetApi of the HTTP API: %v", err)
	}
	rest := aws.String(apistore.ID("t", "shop"))
	if _, err := n.gw.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: rest}); errorCode(err) != "NotFoundException" {
		t.Errorf("GetApi of the REST API: %v, want NotFoundException", err)
	}
	if _, err := n.gw.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: rest}); errorCode(err) != "NotFoundException" {
		t.Errorf("GetRoutes of the REST API: %v, want NotFoundException", err)
	}

	// Without payloadFormatVersion, Import alone would read this as a REST API's document.
	const doc = `openapi: 3.0.1
info: {title: orders, version: "1"}
paths:
  /orders:
    get:
      x-amazon-apigateway-integration: {type: aws_proxy, httpMethod: POST, uri: orders}
`
	imported, err := n.gw.ImportApi(ctx, &apigatewayv2.ImportApiInput{Body: aws.String(doc)})
	if err != nil {
		t.Fatalf("ImportApi: %v", err)
	}
	if imported.ProtocolType != gwtypes.ProtocolTypeHttp {
		t.Errorf("ImportApi made a %s API", imported.ProtocolType)
	}
	items, err := n.gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: imported.ApiId})
	if err != nil || len(items.Items) != 1 || aws.ToString(items.Items[0].PayloadFormatVersion) != "2.0" {
		t.Errorf("GetIntegrations: %+v %v, want one with payload format 2.0", items, err)
	}
}
