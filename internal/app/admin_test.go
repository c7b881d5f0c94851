package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

// adminToken reads the admin token a node wrote on its first start.
func adminToken(t *testing.T, n *Node) string {
	t.Helper()
	b, err := os.ReadFile(adminapi.TokenPath(n.DataDir()))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func adminDo(t *testing.T, n *Node, method, path, token, body string) (int, http.Header, string) {
	t.Helper()
	req := newRequest(t, method, "http://"+n.AdminAddr()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAdminRequiresAToken(t *testing.T) {
	n := sharedNode(t)
	token := adminToken(t, n)
	if info, err := os.Stat(adminapi.TokenPath(n.DataDir())); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, mode %v", err, info.Mode().Perm())
	}
	for _, tt := range []struct{ name, path, token string }{
		{"no token", "/admin/v1/tokens", ""},
		{"wrong token", "/admin/v1/tokens", "gh.admin.not-the-secret"},
		{"not a token", "/admin/v1/tokens", "hello"},
		{"metrics without a token", "/metrics", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := adminDo(t, n, "GET", tt.path, tt.token, "")
			if status != 401 || body != `{"message":"Unauthorized"}` || !strings.HasPrefix(header.Get("Www-Authenticate"), "Bearer") {
				t.Fatalf("got %d %s (www-authenticate %q)", status, body, header.Get("Www-Authenticate"))
			}
		})
	}
	if status, _, body := adminDo(t, n, "GET", "/healthz", "", ""); status != 200 {
		t.Fatalf("healthz without a token: %d %s", status, body)
	}
	if status, _, body := adminDo(t, n, "GET", "/admin/v1/tokens", token, ""); status != 200 || !strings.Contains(body, `"name":"admin"`) || strings.Contains(body, "gh.admin.") {
		t.Fatalf("token list: %d %s", status, body)
	}
}

func TestAdminTokenLifecycle(t *testing.T) {
	n := sharedNode(t)
	admin := adminToken(t, n)
	status, _, body := adminDo(t, n, "POST", "/admin/v1/tokens", admin, `{"name":"ci-deployer"}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ Name, Token string }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Name != "ci-deployer" || !strings.HasPrefix(created.Token, "gh.ci-deployer.") {
		t.Fatalf("create: %s (%v)", body, err)
	}
	if status, _, _ := adminDo(t, n, "GET", "/admin/v1/tokens", created.Token, ""); status != 200 {
		t.Fatalf("the new token does not work: %d", status)
	}
	if status, _, body := adminDo(t, n, "POST", "/admin/v1/tokens", admin, `{"name":"ci-deployer"}`); status != 409 {
		t.Fatalf("duplicate: %d %s", status, body)
	}
	if status, _, body := adminDo(t, n, "POST", "/admin/v1/tokens", admin, `{"name":"Bad Name"}`); status != 400 {
		t.Fatalf("bad name: %d %s", status, body)
	}
	if status, _, body := adminDo(t, n, "DELETE", "/admin/v1/tokens/ci-deployer", admin, ""); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _, _ := adminDo(t, n, "GET", "/admin/v1/tokens", created.Token, ""); status != 401 {
		t.Fatalf("a deleted token still works: %d", status)
	}
	if status, _, _ := adminDo(t, n, "DELETE", "/admin/v1/tokens/ci-deployer", admin, ""); status != 404 {
		t.Fatalf("deleting again: %d", status)
	}
}

// Tokens live in the stack's JetStream store: a restart keeps them and shows no new one.
func TestTokensSurviveRestart(t *testing.T) {
	dir := newDataDir(t)
	n := startNode(t, "testdata/stack.yaml", dir)
	token := adminToken(t, n)
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	n = startNode(t, "testdata/stack.yaml", dir)
	defer n.Stop(context.Background())
	if adminToken(t, n) != token {
		t.Fatal("the admin token file changed on restart")
	}
	if status, _, body := adminDo(t, n, "GET", "/admin/v1/tokens", token, ""); status != 200 {
		t.Fatalf("after a restart: %d %s", status, body)
	}
}

func TestTokensCommand(t *testing.T) {
	n := sharedNode(t)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		cmd := cli(t, append(args, "--data", n.DataDir())...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return out.String() + errOut.String(), err
		}
		return out.String(), nil
	}
	out, err := run("tokens", "create", "from-cli", "--json")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	var created struct{ Name, Token string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Name != "from-cli" {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	out, err = run("tokens", "ls")
	if err != nil || !strings.Contains(out, "from-cli") || !strings.Contains(out, "admin") || strings.Contains(out, created.Token) {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	// The new token works for the CLI too, and a deleted one no longer does.
	if out, err := run("tokens", "ls", "--token", created.Token); err != nil {
		t.Fatalf("ls with the new token: %v\n%s", err, out)
	}
	if out, err := run("tokens", "rm", "from-cli"); err != nil {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	out, err = run("tokens", "ls", "--token", created.Token)
	if err == nil || !strings.Contains(out, "the node refused the admin token") {
		t.Fatalf("ls with a deleted token: %v\n%s", err, out)
	}
	out, err = run("tokens", "create", "Bad Name")
	if err == nil || !strings.Contains(out, "token names are 1 to 64 lower-case letters") || strings.Contains(out, "/admin/v1") {
		t.Fatalf("bad name: %v\n%s", err, out)
	}
}
