package sam

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"gatehouse.dev/gatehouse/internal/respolicy"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
	"gatehouse.dev/gatehouse/internal/testfix"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/*.txtar")

// readTemplate writes the archive's files to a directory and reads its template.yaml as a stack:
// the stack as YAML (with the directory written $DIR), the notices, and the error, one of the two
// empty.
func readTemplate(t *testing.T, files []txtar.File, o Options) (stack, notices, problem string) {
	t.Helper()
	dir := testfix.WriteArchive(t, files)
	file := filepath.Join(dir, "template.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	o.StackName = "app"
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, o)
	var s any
	if err == nil {
		var notes []string
		for _, n := range res.Notices {
			notes = append(notes, n.Error())
		}
		notices = strings.Join(notes, "\n")
		s, err = stackfile.ParseDoc(file, res.Stack, dir)
	}
	if err != nil {
		return "", notices, strings.ReplaceAll(err.Error(), dir, "$DIR")
	}
	return strings.ReplaceAll(testfix.YAML(t, s), dir, "$DIR"), strings.ReplaceAll(notices, dir, "$DIR"), ""
}

// TestGolden reads each testdata/*.txtar's template.yaml (with the function sources beside it) and
// compares the stack, notices or error with the archive's stack.yaml, notices and error.
func TestGolden(t *testing.T) {
	testfix.Golden(t, []string{"stack.yaml", "notices", "error"}, *update, func(t *testing.T, inputs []txtar.File) map[string]string {
		stack, notices, problem := readTemplate(t, inputs, Options{})
		return map[string]string{"stack.yaml": stack, "notices": notices, "error": problem}
	})
}

// TestParameterOverrides checks that --parameter-overrides change what the template's conditions
// and substitutions give, and that an unknown parameter or a value outside AllowedValues is refused.
func TestParameterOverrides(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/http-api-jwt.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var inputs []txtar.File
	for _, f := range ar.Files {
		if f.Name == "template.yaml" || strings.Contains(f.Name, "/") {
			inputs = append(inputs, f)
		}
	}
	stack, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Stage": "prod"}})
	if problem != "" || !strings.Contains(stack, "LOG_LEVEL: WARN") || !strings.Contains(stack, "status-prod:") || !strings.Contains(stack, "TABLE: orders-prod") {
		t.Errorf("with Stage=prod: %s%s", stack, problem)
	}
	if _, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Stage": "qa"}}); !strings.Contains(problem, `template.yaml:7:5: Parameters.Stage: parameter Stage is "qa", which is not one of its AllowedValues`) {
		t.Errorf("Stage=qa: %q", problem)
	}
	if _, _, problem := readTemplate(t, inputs, Options{Parameters: map[string]string{"Nope": "1"}}); !strings.Contains(problem, "--parameter-overrides names Nope, which is not a parameter of the template") {
		t.Errorf("Nope=1: %q", problem)
	}
}

// TestTemplateErrors checks that what cannot be served locally is refused at its place.
func TestTemplateErrors(t *testing.T) {
	const head = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
	tests := []struct{ name, template, want string }{
		{"no resources", "AWSTemplateFormatVersion: '2010-09-09'\n", "t.yaml:1:1: the template has no Resources"},
		{"s3 code", head + "      CodeUri: {Bucket: b, Key: k}\n      Runtime: python3.11\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: function Fn: code in S3 is not served locally: name a local directory or .zip"},
		{"inline code", head + "      InlineCode: print(1)\n      Runtime: python3.11\n", "t.yaml:6:19: Resources.Fn.Properties.InlineCode: function Fn: inline code is not served: put the code in a directory and name it in CodeUri"},
		{"image", head + "      PackageType: Image\n", "t.yaml:6:20: Resources.Fn.Properties.PackageType: function Fn: container images (PackageType: Image) are not served: Gatehouse runs zip packages"},
		{"import value", head + "      CodeUri: !ImportValue shared-code\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: Fn::ImportValue needs a deployed AWS stack and is not evaluated locally: replace it with a value, or a parameter"},
		{"bad ref", head + "      CodeUri: !Ref Nowhere\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: Ref Nowhere: no parameter or resource of that name in the template"},
		{"go1.x", head + "      CodeUri: .\n      Runtime: go1.x\n", "t.yaml:7:16: Resources.Fn.Properties.Runtime: function Fn: go1.x is retired on Lambda: build the handler as bootstrap for provided.al2023"},
		{"unknown tag", head + "      CodeUri: !Foo x\n", "t.yaml:6:16: Resources.Fn.Properties.CodeUri: the tag !Foo is not a CloudFormation intrinsic function"},
		{"no default", "Parameters:\n  Env: {Type: String}\nResources:\n  T: {Type: AWS::SNS::Topic}\n", "t.yaml:2:8: Parameters.Env: parameter Env has no Default: give it a value with --parameter-overrides Env=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse("t.yaml", []byte(tt.template))
			if err == nil {
				_, err = Read("t.yaml", doc, Options{StackName: "t"})
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestPayloadFormatPlaced checks that an HttpApi event's payload format version Gatehouse does not
// know is refused at the event's key.
func TestPayloadFormatPlaced(t *testing.T) {
	files := []txtar.File{{Name: "template.yaml", Data: []byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n" +
		"    Properties:\n      CodeUri: .\n      Runtime: python3.11\n      Handler: app.handler\n      Events:\n        Get:\n          Type: HttpApi\n" +
		"          Properties: {Path: /a, Method: GET, PayloadFormatVersion: '3.0'}\n")}}
	_, _, problem := readTemplate(t, files, Options{})
	if want := `$DIR/template.yaml:12:69: Resources.Fn.Properties.Events.Get.Properties.PayloadFormatVersion: unknown payload format version "3.0": want "2.0" or "1.0"`; problem != want {
		t.Errorf("got  %s\nwant %s", problem, want)
	}
}

// TestRESTStackValidates reads testdata/rest-api.txtar's template and checks, on the validated
// stack, what its REST APIs became: the stages served at the root and under their names, the
// authorizers' types, the cache, the models and the usage plan.
func TestRESTStackValidates(t *testing.T) {
	ar, err := txtar.ParseFile("testdata/rest-api.txtar")
	if err != nil {
		t.Fatal(err)
	}
	dir := testfix.WriteArchive(t, ar.Files)
	file := filepath.Join(dir, "template.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Read(file, doc, Options{StackName: "app"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := stackfile.ParseDoc(file, res.Stack, dir)
	if err != nil {
		t.Fatalf("the stack made from the template does not validate: %v", err)
	}
	pets, implicit := s.APIs["PetsApi"], s.APIs[ImplicitRESTAPI]
	if pets.Type != spec.APITypeREST || implicit.Type != spec.APITypeREST {
		t.Fatalf("types %q and %q, want rest", pets.Type, implicit.Type)
	}
	if _, ok := implicit.Stages[DefaultRESTStage]; !ok || len(implicit.Stages) != 2 || implicit.Mount != "/" {
		t.Errorf("implicit API: stages %v at %s, want $default and Prod at /", implicit.Stages, implicit.Mount)
	}
	if st := pets.Stages["v1"]; st.Cache == nil || st.Cache.SizeMB != 512 || st.Variables["table"] != "pets-v1" || pets.Stages[spec.DefaultStage].Cache == nil {
		t.Errorf("PetsApi's stages: %+v", pets.Stages)
	}
	// Auth.ResourcePolicy's address ranges make a policy the gateway evaluates: inside the
	// whitelist and outside the blacklist.
	policy, err := respolicy.Parse(pets.ResourcePolicy)
	if err != nil {
		t.Fatalf("PetsApi's resource policy: %v\n%s", err, pets.ResourcePolicy)
	}
	for addr, want := range map[string]respolicy.Decision{"127.0.0.1": respolicy.Allow, "10.1.2.3": respolicy.Allow, "10.9.0.1": respolicy.ExplicitDeny, "192.0.2.1": respolicy.ExplicitDeny} {
		arn := respolicy.ARN("us-east-1", "000000000000", "PetsApi", "v1", "GET", "/pets")
		if got := policy.Evaluate(respolicy.Request{SourceIP: netip.MustParseAddr(addr), MethodARN: arn}); got != want {
			t.Errorf("from %s: %v, want %v", addr, got, want)
		}
	}
	if a := pets.Authorizers["Bearer"]; a.Type != spec.AuthorizerToken || a.Function.IdentityValidationExpression == "" {
		t.Errorf("Bearer: %+v", a)
	}
	if a := pets.Authorizers["Partner"]; a.Type != spec.AuthorizerRequest || len(a.Function.IdentitySources) != 2 {
		t.Errorf("Partner: %+v", a)
	}
	if _, ok := pets.Authorizers["Staff"]; ok {
		t.Errorf("the Cognito authorizer Staff was made")
	}
	if !slices.Equal(pets.BinaryMediaTypes, []string{"image/png", "application/octet-stream"}) {
		t.Errorf("binaryMediaTypes %v", pets.BinaryMediaTypes)
	}
	if p, ok := s.UsagePlans["PetsApiUsagePlan"]; !ok || p.Quota == nil || p.Quota.Period != spec.QuotaPeriodDay || p.Throttle == nil || p.Throttle.Burst != 20 {
		t.Errorf("usage plans %+v", s.UsagePlans)
	}
	for _, r := range pets.Routes {
		if r.Key == "POST /pets" && (!r.APIKeyRequired || r.Request == nil || r.Request.Models["application/json"] != "Pet" || !r.Request.ValidateBody || r.Request.ValidateParameters) {
			t.Errorf("POST /pets: %+v %+v", r, r.Request)
		}
	}
}

// TestRESTTemplates checks what REST APIs' settings give, and that problems are reported at the
// template's lines.
func TestRESTTemplates(t *testing.T) {
	const head = "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n" +
		"    Properties:\n      CodeUri: .\n      Runtime: python3.12\n      Handler: app.handler\n      Events:\n        Get:\n          Type: Api\n"
	const api = "  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      StageName: live\n"
	tests := []struct {
		name, template        string
		wantNotice, wantError string
	}{
		{name: "unknown authorizer",
			template:  head + "          Properties: {Path: /a, Method: get, Auth: {Authorizer: Nope}}\n",
			wantError: `template.yaml:12:66: Resources.Fn.Properties.Events.Get.Properties.Auth.Authorizer: event Get: authorizer "Nope" is not in the Api's Auth.Authorizers`},
		{name: "not an api",
			template:  head + "          Properties: {Path: /a, Method: get, RestApiId: Nope}\n",
			wantError: `template.yaml:12:58: Resources.Fn.Properties.Events.Get.Properties.RestApiId: event Get: RestApiId "Nope" is not an AWS::Serverless::Api of the template`},
		{name: "model not in models",
			template:  head + "          Properties: {Path: /a, Method: post, RestApiId: !Ref Api, RequestModel: {Model: Nope, ValidateBody: true}}\n" + api + "      Models: {Pet: {type: object}}\n",
			wantError: `template.yaml:12:90: Resources.Fn.Properties.Events.Get.Properties.RequestModel.Model: no model named "Nope" in this API's models`},
		{name: "request authorizer without identity",
			template: head + "          Properties: {Path: /a, Method: get, RestApiId: !Ref Api}\n" + api +
				"      Auth:\n        Authorizers:\n          Req: {FunctionArn: !GetAtt Fn.Arn, FunctionPayloadType: REQUEST}\n",
			wantError: `template.yaml:19:16: Resources.Api.Properties.Auth.Authorizers.Req: Api Api: authorizer Req: a REQUEST authorizer names what it reads in Identity: Headers, QueryStrings, StageVariables or Context`},
		{name: "cache clamped",
			template:   head + "          Properties: {Path: /a, Method: get, RestApiId: !Ref Api}\n" + api + "      CacheClusterEnabled: true\n      CacheClusterSize: '6.1'\n",
			wantNotice: `template.yaml:18:25: Resources.Api.Properties.CacheClusterSize: Api Api: a cache of 6.1 GB is kept in the gateway's memory here, at most 1024 MB: the stage cache holds 1024 MB`},
		{name: "keys without a plan",
			template:   head + "          Properties: {Path: /a, Method: get, Auth: {ApiKeyRequired: true}}\n",
			wantNotice: `template.yaml:12:70: Resources.Fn.Properties.Events.Get.Properties.Auth.ApiKeyRequired: routes ask for an API key, and the template makes no usage plan Gatehouse reads: usage plan ServerlessUsagePlan (no throttle, no quota) is made for their keys: gatehouse keys create NAME --plan ServerlessUsagePlan`},
		{name: "definition uri in s3",
			template:  head + "          Properties: {Path: /a, Method: get, RestApiId: !Ref Api}\n" + api + "      DefinitionUri: {Bucket: b, Key: openapi.yaml}\n",
			wantError: `template.yaml:17:22: Resources.Api.Properties.DefinitionUri: DefinitionUri in S3 is not served locally: name a local file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, notices, problem := readTemplate(t, []txtar.File{{Name: "template.yaml", Data: []byte(tt.template)}}, Options{})
			problem = strings.TrimPrefix(problem, "$DIR/")
			if problem != tt.wantError {
				t.Errorf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, "$DIR/"+tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
		})
	}
}

// TestSnapStart checks what a function's SnapStart becomes: ApplyOn PublishedVersions turns the
// stack file's snapStart on, None leaves it off, Globals.Function gives it to every function (which
// may turn it off), a Node.js or Python function keeps its usual starts with a notice, and any other
// ApplyOn is refused at its line.
func TestSnapStart(t *testing.T) {
	const head = "Transform: AWS::Serverless-2016-10-31\n"
	fn := func(id, typ, runtime, props string) string {
		code := "CodeUri: fn.wasm"
		if typ == "AWS::Lambda::Function" {
			code = "Code: fn.wasm"
		}
		if runtime != "wasm" {
			code = strings.Replace(code, "fn.wasm", ".", 1) + "\n      Handler: app.handler"
		}
		// A schedule, so that the stack serves something.
		events := "      Events:\n        Tick:\n          Type: Schedule\n          Properties: {Schedule: rate(1 hour)}\n"
		return "  " + id + ":\n    Type: " + typ + "\n    Properties:\n      " + code + "\n      Runtime: " + runtime + "\n" + props + events
	}
	const on = "      SnapStart:\n        ApplyOn: PublishedVersions\n"
	tests := []struct {
		name, template string
		want           map[string]bool // function → snapStart in the stack
		wantNotice     string
		wantError      string
	}{
		{name: "published versions",
			template: head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "wasm", on),
			want:     map[string]bool{"Fn": true}},
		{name: "none",
			template: head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "wasm", "      SnapStart: {ApplyOn: None}\n"),
			want:     map[string]bool{"Fn": false}},
		{name: "not set",
			template: head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "wasm", ""),
			want:     map[string]bool{"Fn": false}},
		{name: "lambda function",
			template: "Resources:\n" + fn("Fn", "AWS::Lambda::Function", "wasm", on),
			want:     map[string]bool{"Fn": true}},
		{name: "globals",
			template: head + "Globals:\n  Function:\n    SnapStart: {ApplyOn: PublishedVersions}\nResources:\n" +
				fn("A", "AWS::Serverless::Function", "wasm", "") + fn("B", "AWS::Serverless::Function", "wasm", "      SnapStart: {ApplyOn: None}\n"),
			want: map[string]bool{"A": true, "B": false}},
		{name: "python function",
			template:   head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "python3.12", on),
			want:       map[string]bool{"Fn": false},
			wantNotice: "template.yaml:10:9: Resources.Fn.Properties.SnapStart: function Fn: SnapStart applies to WebAssembly functions only here; a python3.12 function starts as usual: ignored"},
		{name: "bad ApplyOn",
			template:  head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "wasm", "      SnapStart:\n        ApplyOn: Always\n"),
			wantError: `template.yaml:9:18: Resources.Fn.Properties.SnapStart.ApplyOn: function Fn: SnapStart.ApplyOn "Always": want PublishedVersions or None`},
		{name: "no ApplyOn",
			template:  head + "Resources:\n" + fn("Fn", "AWS::Serverless::Function", "wasm", "      SnapStart: true\n"),
			wantError: `template.yaml:8:18: Resources.Fn.Properties.SnapStart: function Fn: SnapStart: want {ApplyOn: PublishedVersions} or {ApplyOn: None}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := []txtar.File{{Name: "template.yaml", Data: []byte(tt.template)}, {Name: "fn.wasm", Data: []byte("\x00asm\x01\x00\x00\x00")}}
			stack, notices, problem := readTemplate(t, files, Options{})
			if problem = strings.TrimPrefix(problem, "$DIR/"); problem != tt.wantError {
				t.Fatalf("error\ngot  %s\nwant %s", problem, tt.wantError)
			}
			if tt.wantNotice != "" && !strings.Contains(notices, "$DIR/"+tt.wantNotice) {
				t.Errorf("notices\n%s\nwant %s", notices, tt.wantNotice)
			}
			for name, on := range tt.want {
				// The stack's YAML lists each function's settings under its name, in order.
				_, after, ok := strings.Cut(stack, "\n  "+name+":\n")
				section, _, _ := strings.Cut(after, "\n    schedules:")
				if !ok || strings.Contains(section, "snapStart: true") != on {
					t.Errorf("function %s: want snapStart %v in\n%s", name, on, stack)
				}
			}
		})
	}
}
