package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/admin"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/testfix"
)

// deployRaw posts a bundle to a node's admin API and returns the status and body.
func deployRaw(t *testing.T, adminURL, token string, bundle []byte) (int, string) {
	t.Helper()
	req := newRequest(t, "POST", adminURL+"/admin/v1/functions", bytes.NewReader(bundle))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/zip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDeployRefusesBadModules sends bundles whose archive is fine but whose module is not, through a
// running stack: the node compiles the module before it stores anything, so each gets a 400 that
// says why, and the function keeps its one version.
func TestDeployRefusesBadModules(t *testing.T) {
	n := startNode(t, "testdata/deploy-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	token := adminToken(t, n)
	header := []byte("\x00asm\x01\x00\x00\x00")
	// type 0: () -> (); import "env" "foo" of type 0.
	importsHost := append(append([]byte{}, header...), 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
		0x02, 0x0b, 0x01, 0x03, 'e', 'n', 'v', 0x03, 'f', 'o', 'o', 0x00, 0x00)
	for _, tc := range []struct {
		name, module, want string
	}{
		{"not valid wasm", string(header) + "\x01\xff\xff\xff\xff", "module"},
		{"imports a host function Gatehouse does not provide", string(importsHost), "env"},
		{"exports no ABI", string(header), "export"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := functions.WriteBundle(&buf, functions.NewManifest("version"), []byte(tc.module)); err != nil {
				t.Fatal(err)
			}
			status, body := deployRaw(t, "http://"+n.AdminAddr(), token, buf.Bytes())
			if status != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("got %d %s; want 400 mentioning %q", status, body, tc.want)
			}
			vs, err := n.registry.Versions(t.Context(), "version")
			if err != nil || len(vs) != 1 {
				t.Fatalf("versions after a refused deploy: %d, %v", len(vs), err)
			}
		})
	}
	wantServed(t, n, "/latest", "1", "stack")
}

// upProcess is `gatehouse up` running as a user runs it, in a process of its own.
type upProcess struct {
	cmd      *os.Process
	adminURL string
	done     chan error
}

func startUpProcess(t *testing.T, dataDir string) *upProcess {
	t.Helper()
	cmd := cli(t, "up", "-f", "testdata/deploy-stack.yaml", "--data", dataDir, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--aws-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd.Process, done: make(chan error, 1)}
	t.Cleanup(func() { p.cmd.Kill(); <-p.done })
	lines := bufio.NewScanner(stdout)
	re := regexp.MustCompile(`^admin: (http://\S+)/healthz`)
	var out strings.Builder
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			p.adminURL = m[1]
			break
		}
	}
	go func() {
		io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	if p.adminURL == "" {
		t.Fatalf("no admin address in output:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	return p
}

// TestKillDuringDeploy kills `gatehouse up` (SIGKILL) at different moments of a deploy, restarts it,
// and checks that the store is consistent every time: the function has versions 1..N with no gap, each
// of them runs, and $LATEST serves the newest — the old version or the new one, never a broken one.
func TestKillDuringDeploy(t *testing.T) {
	dataDir := newDataDir(t)
	module, err := os.ReadFile(testfix.Reactor(t, versionModule))
	if err != nil {
		t.Fatal(err)
	}
	bundle := func(round int) []byte {
		// A new module (4 MB bigger) each round, so the deploy has real work to be killed in: storing the
		// module, compiling it, writing the records, loading it in the workers.
		padding := make([]byte, 4<<20)
		rand.Read(padding)
		m := functions.NewManifest("version")
		m.Environment = map[string]string{"COLOR": fmt.Sprint("round", round)}
		var buf bytes.Buffer
		if err := functions.WriteBundle(&buf, m, withCustomSection(module, "padding", padding)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	// First a deploy that is not interrupted, to learn how long one takes here; then kills spread
	// over that time, from the upload to the answer.
	var full time.Duration
	fractions := []float64{0.25, 0.6, 0.85, 1.0}
	for round := range len(fractions) + 1 {
		p := startUpProcess(t, dataDir)
		token, err := os.ReadFile(adminapi.TokenPath(dataDir))
		if err != nil {
			t.Fatal(err)
		}
		b := bundle(round)
		if round == 0 {
			start := time.Now()
			if status, body := deployRaw(t, p.adminURL, strings.TrimSpace(string(token)), b); status != 201 {
				t.Fatalf("deploy: %d %s", status, body)
			}
			full = time.Since(start)
			t.Logf("an uninterrupted deploy took %s", full.Round(time.Millisecond))
		} else {
			go func() {
				req, _ := http.NewRequest("POST", p.adminURL+"/admin/v1/functions", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			time.Sleep(time.Duration(fractions[round-1] * float64(full)))
		}
		if err := p.cmd.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
		p.done <- nil // for the cleanup

		n := startNode(t, "testdata/deploy-stack.yaml", dataDir)
		checkConsistent(t, n, round)
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// checkConsistent checks that every version of the version function runs and $LATEST is the newest.
func checkConsistent(t *testing.T, n *Node, round int) {
	t.Helper()
	vs, err := n.registry.Versions(t.Context(), "version")
	if err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	for i, v := range vs {
		if v.Version != i+1 {
			t.Fatalf("round %d: versions %v have a gap", round, vs)
		}
		out, _, code := cliResult(n, "invoke", fmt.Sprintf("version:%d", v.Version))
		var s served
		if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Version != fmt.Sprint(v.Version) {
			t.Fatalf("round %d: version %d does not run: exit %d, %q", round, v.Version, code, out)
		}
	}
	wantServed(t, n, "/latest", fmt.Sprint(len(vs)), vs[len(vs)-1].Manifest.Environment["COLOR"])
	// Every version deployed through the admin API is in the audit log, even when the node was
	// killed between storing the version and recording its entry.
	entries, err := n.audit.List(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.DeployedBy == "" {
			continue
		}
		target := fmt.Sprintf("version:%d", v.Version)
		if !slices.ContainsFunc(entries, func(e adminapi.AuditEntry) bool { return e.Action == admin.ActionFunctionDeploy && e.Target == target }) {
			t.Fatalf("round %d: version %d, deployed by %s, is not in the audit log", round, v.Version, v.DeployedBy)
		}
	}
	t.Logf("round %d: %d versions, all run", round, len(vs))
}

// TestGatewayFollowsAPIDefinitions changes the stack's stored API definitions as another node
// started with a changed stack file would, and finds the running gateway serving the new routes.
func TestGatewayFollowsAPIDefinitions(t *testing.T) {
	n := startNode(t, "testdata/deploy-stack.yaml", newDataDir(t))
	t.Cleanup(func() { n.Stop(context.Background()) })
	if r := do(t, newRequest(t, "GET", "http://"+n.GatewayAddr()+"/added", nil)); r.status != 404 {
		t.Fatalf("GET /added before: %d", r.status)
	}
	recs, err := n.apiStore.List(t.Context(), func(err error) { t.Error(err) })
	if err != nil || len(recs) != 1 {
		t.Fatalf("stored APIs: %+v, %v", recs, err)
	}
	r := recs[0]
	r.API.Routes = append(r.API.Routes, spec.Route{Key: "GET /added", Authorization: spec.Authorization{Type: spec.AuthNone},
		Integration: spec.Integration{Type: spec.IntegrationFunction, Target: "version:1", PayloadFormatVersion: spec.PayloadFormat2, Timeout: spec.Duration(time.Second)}})
	r.Source = "other-node.yaml"
	if _, err := n.apiStore.Put(t.Context(), r, r.Revision); err != nil {
		t.Fatalf("put: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, s := getVersion(t, n, "/added")
		if status == 200 && s.Version == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /added after the definitions changed: %d %+v", status, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantServed(t, n, "/latest", "1", "stack") // the old routes are still there
}
