package app

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	gwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/golang-jwt/jwt/v5"
)

// awsStackFile is a stack with its own account id, a usage plan, and an API of its own for the AWS
// API to show read-only.
const awsStackFile = `version: 1
name: acct
iam:
  accountId: "123456789012"
usagePlans:
  basic:
    throttle: {rate: 100, burst: 100}
functions:
  echo:
    source: .
    runtime: python3.11
    handler: app.handler
apis:
  web:
    type: http
    stages:
      prod: {variables: {color: blue}}
    routes:
      GET /echo: {function: echo}
      GET /signed:
        function: echo
        authorization: {type: iam}
`

// echoPy answers with the event's requestContext.
const echoPy = "import json\n\ndef handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event['requestContext'])}\n"

// getJSON GETs url with headers and returns the status and the body decoded as a JSON object (nil
// when it is not one).
func getJSON(t *testing.T, url string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	return resp.StatusCode, v
}

// TestAWSAPIStackAPIs checks what the AWS API shows of a stack's own API and account, its paging,
// API keys, access log settings, and a JWT authorizer made through it that checks real tokens.
func TestAWSAPIStackAPIs(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the test deploys a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(echoPy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"), []byte(awsStackFile), 0o644); err != nil {
		t.Fatal(err)
	}
	n, cfg, _ := awsNode(t, filepath.Join(dir, "gatehouse.yaml"))
	endpoint := aws.String("http://" + n.AWSAddr())
	gw := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = endpoint })
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = endpoint })
	ctx := context.Background()
	gwURL := "http://" + n.GatewayAddr()

	t.Run("account id", func(t *testing.T) {
		id, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint }).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Account) != "123456789012" {
			t.Fatalf("GetCallerIdentity: %+v %v", id, err)
		}
		fn, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("echo")})
		if err != nil || !strings.Contains(aws.ToString(fn.Configuration.FunctionArn), ":123456789012:function:echo") {
			t.Fatalf("GetFunction: %v", err)
		}
		status, rc := getJSON(t, gwURL+"/prod/echo", nil)
		if status != 200 || rc["accountId"] != "123456789012" || rc["stage"] != "prod" {
			t.Fatalf("GET /prod/echo: %d %v", status, rc)
		}
	})

	var webID string
	t.Run("the stack file's API, read-only", func(t *testing.T) {
		apis, err := gw.GetApis(ctx, &apigatewayv2.GetApisInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apis.Items {
			if aws.ToString(a.Name) == "web" {
				webID = aws.ToString(a.ApiId)
			}
		}
		api, err := gw.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: aws.String(webID)})
		if err != nil || aws.ToString(api.Name) != "web" || api.Tags["gatehouse:managedBy"] != "stack-file" || aws.ToString(api.ApiEndpoint) != gwURL+"/"+webID {
			t.Fatalf("GetApi %q: %+v %v", webID, api, err)
		}
		routes, err := gw.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: aws.String(webID)})
		if err != nil || len(routes.Items) != 2 {
			t.Fatalf("GetRoutes: %+v %v", routes, err)
		}
		auth := map[string]gwtypes.AuthorizationType{}
		for _, r := range routes.Items {
			auth[aws.ToString(r.RouteKey)] = r.AuthorizationType
			again, err := gw.GetRoute(ctx, &apigatewayv2.GetRouteInput{ApiId: aws.String(webID), RouteId: r.RouteId})
			if err != nil || aws.ToString(again.RouteKey) != aws.ToString(r.RouteKey) {
				t.Fatalf("GetRoute %s: %+v %v", aws.ToString(r.RouteId), again, err)
			}
		}
		if auth["GET /echo"] != gwtypes.AuthorizationTypeNone || auth["GET /signed"] != gwtypes.AuthorizationTypeAwsIam {
			t.Fatalf("routes' authorization: %v", auth)
		}
		integrations, err := gw.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(webID)})
		if err != nil || len(integrations.Items) != 2 || !strings.HasSuffix(aws.ToString(integrations.Items[0].IntegrationUri), ":123456789012:function:echo") {
			t.Fatalf("GetIntegrations: %+v %v", integrations, err)
		}
		stages, err := gw.GetStages(ctx, &apigatewayv2.GetStagesInput{ApiId: aws.String(webID)})
		if err != nil || len(stages.Items) != 1 || stages.Items[0].StageVariables["color"] != "blue" {
			t.Fatalf("GetStages: %+v %v", stages, err)
		}
		export, err := gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: aws.String(webID), OutputType: aws.String("JSON"), Specification: aws.String("OAS30")})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Paths      map[string]map[string]map[string]any
			Components struct{ SecuritySchemes map[string]map[string]any }
		}
		if err := json.Unmarshal(export.Body, &doc); err != nil || doc.Paths["/echo"]["get"] == nil || doc.Paths["/signed"]["get"]["security"] == nil ||
			doc.Components.SecuritySchemes["sigv4"]["x-amazon-apigateway-authtype"] != "awsSigv4" {
			t.Fatalf("ExportApi: %s %v", export.Body, err)
		}
		_, err = gw.UpdateApi(ctx, &apigatewayv2.UpdateApiInput{ApiId: aws.String(webID), Name: aws.String("renamed")})
		if errorCode(err) != "BadRequestException" || !strings.Contains(err.Error(), "stack file") {
			t.Errorf("UpdateApi on the stack file's API: %v", err)
		}
		if _, err := gw.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: aws.String(webID)}); errorCode(err) != "BadRequestException" {
			t.Errorf("DeleteApi on the stack file's API: %v", err)
		}
		if _, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: aws.String(webID), RouteKey: aws.String("GET /x")}); errorCode(err) != "BadRequestException" {
			t.Errorf("CreateRoute on the stack file's API: %v", err)
		}
		if status, _ := getJSON(t, aws.ToString(api.ApiEndpoint)+"/prod/echo", nil); status != 200 {
			t.Fatalf("the stack file's API after refused changes: %d", status)
		}
	})

	integration := func(t *testing.T, apiID *string) string {
		t.Helper()
		it, err := gw.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: apiID, IntegrationType: gwtypes.IntegrationTypeAwsProxy,
			IntegrationUri: aws.String("echo"), PayloadFormatVersion: aws.String("2.0")})
		if err != nil {
			t.Fatalf("CreateIntegration: %v", err)
		}
		return "integrations/" + aws.ToString(it.IntegrationId)
	}

	t.Run("api keys and access log settings", func(t *testing.T) {
		api, err := gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("keyed"), ProtocolType: gwtypes.ProtocolTypeHttp})
		if err != nil {
			t.Fatal(err)
		}
		route, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /keyed"),
			Target: aws.String(integration(t, api.ApiId)), ApiKeyRequired: aws.Bool(true)})
		if err != nil || !aws.ToBool(route.ApiKeyRequired) {
			t.Fatalf("CreateRoute with ApiKeyRequired: %+v %v", route, err)
		}
		cw := cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) { o.BaseEndpoint = endpoint })
		if _, err := cw.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("my-api-logs")}); err != nil {
			t.Fatal(err)
		}
		logs := &gwtypes.AccessLogSettings{DestinationArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:my-api-logs"),
			Format: aws.String(`{"requestId":"$context.requestId","status":"$context.status"}`)}
		if _, err := gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
			AccessLogSettings: logs}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		stage, err := gw.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: api.ApiId, StageName: aws.String("prod")})
		if err != nil || stage.AccessLogSettings == nil || aws.ToString(stage.AccessLogSettings.Format) != aws.ToString(logs.Format) ||
			aws.ToString(stage.AccessLogSettings.DestinationArn) != aws.ToString(logs.DestinationArn) {
			t.Fatalf("GetStage: %+v %v", stage, err)
		}
		url := aws.ToString(api.ApiEndpoint) + "/prod/keyed"
		if status, _ := getJSON(t, url, nil); status != 403 {
			t.Fatalf("without an API key: %d", status)
		}
		var created struct{ Key string }
		if out := runCLI(t, n, "keys", "create", "partner", "--plan", "basic", "--json"); json.Unmarshal([]byte(out), &created) != nil || created.Key == "" {
			t.Fatalf("keys create: %q", out)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, _ := getJSON(t, url, map[string]string{"x-api-key": created.Key})
			if status == 200 {
				break
			}
			if status != 403 || time.Now().After(deadline) {
				t.Fatalf("with an API key: %d", status)
			}
			time.Sleep(20 * time.Millisecond) // the key reaches the gateway's copy
		}
		// The stage's access log lines are in the log group its AccessLogSettings name.
		statuses := map[string]bool{}
		for time.Now().Before(deadline) && !(statuses["403"] && statuses["200"]) {
			ev, err := cw.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("my-api-logs")})
			if err != nil {
				t.Fatalf("FilterLogEvents: %v", err)
			}
			for _, e := range ev.Events {
				var line struct{ RequestID, Status string }
				if err := json.Unmarshal([]byte(aws.ToString(e.Message)), &line); err != nil || line.RequestID == "" {
					t.Fatalf("an access log line that is not its format's JSON: %q", aws.ToString(e.Message))
				}
				statuses[line.Status] = true
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !statuses["403"] || !statuses["200"] {
			t.Errorf("statuses in the access log group: %v, want 403 and 200", statuses)
		}
	})

	t.Run("paging", func(t *testing.T) {
		for i := range 3 {
			if _, err := gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String(fmt.Sprintf("paged-%d", i)), ProtocolType: gwtypes.ProtocolTypeHttp}); err != nil {
				t.Fatal(err)
			}
		}
		all, err := gw.GetApis(ctx, &apigatewayv2.GetApisInput{})
		if err != nil || len(all.Items) < 5 || all.NextToken != nil {
			t.Fatalf("GetApis: %d items, %v", len(all.Items), err)
		}
		var want, got []string
		for _, a := range all.Items {
			want = append(want, aws.ToString(a.ApiId))
		}
		pages := 0
		in := &apigatewayv2.GetApisInput{MaxResults: aws.String("2")}
		for {
			page, err := gw.GetApis(ctx, in)
			if err != nil || len(page.Items) > 2 {
				t.Fatalf("page %d: %d items, %v", pages, len(page.Items), err)
			}
			pages++
			for _, a := range page.Items {
				got = append(got, aws.ToString(a.ApiId))
			}
			if page.NextToken == nil {
				break
			}
			in.NextToken = page.NextToken
		}
		if !slices.Equal(got, want) || pages != (len(want)+1)/2 {
			t.Fatalf("%d pages of %v, want %v", pages, got, want)
		}
		if _, err := gw.GetApis(ctx, &apigatewayv2.GetApisInput{NextToken: aws.String("not-a-token")}); errorCode(err) != "BadRequestException" {
			t.Fatalf("a made-up token: %v", err)
		}
		if _, err := gw.GetApis(ctx, &apigatewayv2.GetApisInput{MaxResults: aws.String("0")}); errorCode(err) != "BadRequestException" {
			t.Fatalf("MaxResults 0: %v", err)
		}
	})

	t.Run("a JWT authorizer checks real tokens", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		var issuer *httptest.Server
		issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/.well-known/openid-configuration":
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer.URL, issuer.URL+"/keys")
			case "/keys":
				fmt.Fprintf(w, `{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":%q}]}`,
					base64.RawURLEncoding.EncodeToString(key.N.Bytes()), base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()))
			default:
				http.NotFound(w, r)
			}
		}))
		defer issuer.Close()
		token := func(claims jwt.MapClaims) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
			tok.Header["kid"] = "k1"
			s, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}

		api, err := gw.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("jwt"), ProtocolType: gwtypes.ProtocolTypeHttp})
		if err != nil {
			t.Fatal(err)
		}
		au, err := gw.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("corp"), AuthorizerType: gwtypes.AuthorizerTypeJwt,
			IdentitySource:   []string{"$request.header.Authorization"},
			JwtConfiguration: &gwtypes.JWTConfiguration{Issuer: aws.String(issuer.URL), Audience: []string{"api://jwt"}}})
		if err != nil {
			t.Fatalf("CreateAuthorizer: %v", err)
		}
		if _, err := gw.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("GET /me"), Target: aws.String(integration(t, api.ApiId)),
			AuthorizationType: gwtypes.AuthorizationTypeJwt, AuthorizerId: au.AuthorizerId, AuthorizationScopes: []string{"read"}}); err != nil {
			t.Fatalf("CreateRoute: %v", err)
		}
		if _, err := gw.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("$default"), AutoDeploy: aws.Bool(true)}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		url := aws.ToString(api.ApiEndpoint) + "/me"
		now := time.Now()
		good := jwt.MapClaims{"iss": issuer.URL, "aud": "api://jwt", "sub": "alice", "scope": "read write", "exp": now.Add(time.Hour).Unix()}
		status, rc := getJSON(t, url, map[string]string{"Authorization": "Bearer " + token(good)})
		claims, _ := rc["authorizer"].(map[string]any)["jwt"].(map[string]any)["claims"].(map[string]any)
		if status != 200 || claims["sub"] != "alice" {
			t.Fatalf("a good token: %d %v", status, rc)
		}
		if status, _ := getJSON(t, url, nil); status != 401 {
			t.Errorf("no token: %d, want 401", status)
		}
		noScope := jwt.MapClaims{"iss": issuer.URL, "aud": "api://jwt", "sub": "bob", "scope": "write", "exp": now.Add(time.Hour).Unix()}
		if status, _ := getJSON(t, url, map[string]string{"Authorization": "Bearer " + token(noScope)}); status != 403 {
			t.Errorf("a token without the scope: %d, want 403", status)
		}
		otherAudience := jwt.MapClaims{"iss": issuer.URL, "aud": "api://other", "sub": "eve", "scope": "read", "exp": now.Add(time.Hour).Unix()}
		if status, _ := getJSON(t, url, map[string]string{"Authorization": "Bearer " + token(otherAudience)}); status != 401 {
			t.Errorf("a token for another audience: %d, want 401", status)
		}

		export, err := gw.ExportApi(ctx, &apigatewayv2.ExportApiInput{ApiId: api.ApiId, OutputType: aws.String("JSON"), Specification: aws.String("OAS30")})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Paths      map[string]map[string]struct{ Security []map[string][]string }
			Components struct {
				SecuritySchemes map[string]struct {
					Authorizer struct {
						Type             string
						JwtConfiguration struct{ Issuer string } `json:"jwtConfiguration"`
					} `json:"x-amazon-apigateway-authorizer"`
				}
			}
		}
		if err := json.Unmarshal(export.Body, &doc); err != nil || len(doc.Paths["/me"]["get"].Security) != 1 ||
			!slices.Equal(doc.Paths["/me"]["get"].Security[0]["corp"], []string{"read"}) ||
			doc.Components.SecuritySchemes["corp"].Authorizer.Type != "jwt" || doc.Components.SecuritySchemes["corp"].Authorizer.JwtConfiguration.Issuer != issuer.URL {
			t.Fatalf("ExportApi: %s %v", export.Body, err)
		}
	})
}
