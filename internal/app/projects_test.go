package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	commands "gatehouse.dev/gatehouse/internal/cli"
	"gatehouse.dev/gatehouse/internal/project"
)

// TestSAMTemplate serves samples/sam-app/template.yaml as it is: a Python function and a Go one
// (whose bootstrap Gatehouse builds from source, as sam build does) behind the template's implicit
// HTTP API, with a parameter overridden. Then it exports the API as OpenAPI and imports it again
// under another name and mount, which answers the same.
func TestSAMTemplate(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the sample has a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	n := startNode(t, filepath.Join("..", "..", "samples", "sam-app", "template.yaml"), newDataDir(t), func(o *Options) {
		o.Parameters = map[string]string{"Greeting": "Howdy"}
	})
	base := "http://" + n.GatewayAddr()
	for path, want := range map[string]string{
		"/hello?name=sam":    `{"message": "Howdy, sam!", "runtime": "python"}`,
		"/go/hello?name=sam": `{"message":"Howdy, sam!","runtime":"go"}`,
	} {
		if r := do(t, newRequest(t, "GET", base+path, nil)); r.status != 200 || string(r.body) != want {
			t.Errorf("GET %s: %d %s, want 200 %s", path, r.status, r.body, want)
		}
	}
	if r := do(t, newRequest(t, "GET", base+"/nope", nil)); r.status != 404 {
		t.Errorf("GET /nope: %d, want 404", r.status)
	}

	// The implicit API round-trips through OpenAPI.
	doc := runCLI(t, n, "apis", "export", "ServerlessHttpApi")
	if !strings.Contains(doc, "openapi: 3.0.1") || !strings.Contains(doc, "/go/hello:") || !strings.Contains(doc, "function:HelloGoFunction") {
		t.Fatalf("apis export:\n%s", doc)
	}
	file := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := runCLI(t, n, "apis", "import", file, "--name", "copy"); !strings.Contains(out, "imported http API copy (2 routes) at /copy") {
		t.Fatalf("apis import: %s", out)
	}
	if r := do(t, newRequest(t, "GET", base+"/copy/go/hello?name=copy", nil)); r.status != 200 || string(r.body) != `{"message":"Howdy, copy!","runtime":"go"}` {
		t.Errorf("GET /copy/go/hello: %d %s", r.status, r.body)
	}
}

// TestServerlessService serves a serverless.yml as it is, found in its directory with no
// gatehouse.yaml: a Python function behind an httpApi event, with variables from --stage and self:.
func TestServerlessService(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found on PATH: the service has a Python function (.ci/run installs it)")
	}
	needSandbox(t)
	dir := t.TempDir()
	files := map[string]string{
		"serverless.yml": `service: greeter
frameworkVersion: '3'
plugins: [serverless-offline]
custom:
  greeting:
    dev: hello
    prod: good day
provider:
  name: aws
  runtime: python3.11
  stage: ${opt:stage, 'dev'}
  environment:
    GREETING: ${self:custom.greeting.${sls:stage}}
functions:
  greet:
    handler: src/greet.handler
    events:
      - httpApi: GET /greet/{name}
`,
		"src/greet.py": "import os\n\ndef handler(event, context):\n    return {'statusCode': 200, 'body': os.environ['GREETING'] + ', ' + event['pathParameters']['name']}\n",
	}
	writeTree(t, dir, files)
	found, ok := project.Find(dir)
	if !ok || filepath.Base(found) != "serverless.yml" {
		t.Fatalf("Find(%s) = %q, %v", dir, found, ok)
	}
	n := startNode(t, found, newDataDir(t), func(o *Options) { o.Stage = "prod" })
	if r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/greet/ana", nil)); r.status != 200 || string(r.body) != "good day, ana" {
		t.Errorf("GET /greet/ana: %d %q, want 200 \"good day, ana\"", r.status, r.body)
	}
}

// TestInitTemplates writes each of gatehouse init's templates into an empty directory and serves
// it: the HTTP ones answer GET /hello, and the chat room passes a message from one client to the
// other.
func TestInitTemplates(t *testing.T) {
	for _, name := range commands.Templates() {
		t.Run(name, func(t *testing.T) {
			switch {
			case name == "http-python" && !onPath("python3"), name == "http-node" && !onPath("node"):
				t.Skipf("the %s template needs its interpreter on PATH (.ci/run installs it)", name)
			case strings.HasPrefix(name, "http-python"), strings.HasPrefix(name, "http-node"):
				needSandbox(t)
			}
			dir := filepath.Join(t.TempDir(), "my-app")
			if _, err := commands.WriteTemplate(dir, name); err != nil {
				t.Fatal(err)
			}
			if _, err := commands.WriteTemplate(dir, name); err == nil || !strings.Contains(err.Error(), "exists already") {
				t.Fatalf("a second init into the same directory: %v, want a refusal", err)
			}
			n := startNode(t, filepath.Join(dir, "gatehouse.yaml"), newDataDir(t))
			if n.stack.Name != "my-app" {
				t.Errorf("stack name %q, want my-app (the directory's)", n.stack.Name)
			}
			if name != "websocket-chat" {
				if r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/hello?name=init", nil)); r.status != 200 || string(r.body) != `{"message": "hello, init!"}` && string(r.body) != `{"message":"hello, init!"}` {
					t.Errorf("GET /hello: %d %s", r.status, r.body)
				}
				return
			}
			a, b := wsDial(t, n, "/chat", nil), wsDial(t, n, "/chat", nil)
			wsSend(t, a, `{"action":"sendmessage","data":"hi from a"}`)
			for _, c := range []*websocket.Conn{a, b} {
				if _, data := wsRead(t, c); !strings.Contains(string(data), `"data":"hi from a"`) {
					t.Errorf("a member got %s, want the message", data)
				}
			}
		})
	}
}

func onPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

// writeTree writes files (by path relative to dir) into dir, making their directories.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
