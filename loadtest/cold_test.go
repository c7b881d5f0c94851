package loadtest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/functions"
)

// testModule is the smallest module a bundle accepts: the WebAssembly header.
var testModule = []byte("\x00asm\x01\x00\x00\x00")

// testBundle is a bundle of function "src" with settings that the copies must keep, minWarm 1 that
// they must drop, and an extra file.
func testBundle(t *testing.T) []byte {
	t.Helper()
	m := functions.NewManifest("src")
	m.MemoryMB = 256
	m.Environment = map[string]string{"GREETING": "hi"}
	m.MinWarm = 1
	manifest, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range []struct {
		name string
		data []byte
	}{{functions.ManifestFile, manifest}, {m.Module, testModule}, {"README.md", []byte("read me")}} {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// adminServer imitates the admin API's deploy, invoke and delete endpoints.
type adminServer struct {
	t   *testing.T
	srv *httptest.Server
	// failDeploy and fnError pick functions (by deploy order, from 0) whose deploy answers 400, or
	// whose invocations answer a function error.
	failDeploy, fnError func(i int) bool
	// afterDeploy runs after each successful deploy.
	afterDeploy func(i int)

	mu       sync.Mutex
	deployed map[string]*functions.Bundle
	order    []string
	invoked  map[string]int
	deleted  []string
	payloads []string
	attempts int
}

func newAdminServer(t *testing.T, configure func(*adminServer)) *adminServer {
	s := &adminServer{t: t, deployed: map[string]*functions.Bundle{}, invoked: map[string]int{}}
	if configure != nil {
		configure(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/v1/functions", s.deploy)
	mux.HandleFunc("POST /admin/v1/functions/{name}/invocations", s.invoke)
	mux.HandleFunc("DELETE /admin/v1/functions/{name}", s.delete)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *adminServer) deploy(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/zip" {
		http.Error(w, "want a zip", http.StatusBadRequest)
		return
	}
	b, err := functions.ReadBundle(bytes.NewReader(body), int64(len(body)), functions.BundleLimits{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	i := s.attempts
	s.attempts++
	if s.failDeploy != nil && s.failDeploy(i) {
		s.mu.Unlock()
		http.Error(w, `{"message":"bad module"}`, http.StatusBadRequest)
		return
	}
	if _, ok := s.deployed[b.Manifest.Name]; ok {
		s.t.Errorf("%s deployed twice", b.Manifest.Name)
	}
	s.deployed[b.Manifest.Name] = b
	s.order = append(s.order, b.Manifest.Name)
	s.mu.Unlock()
	if s.afterDeploy != nil {
		s.afterDeploy(i)
	}
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"function": b.Manifest.Name, "created": true, "version": map[string]any{"version": 1}})
}

func (s *adminServer) invoke(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	payload, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	_, ok := s.deployed[name]
	i := slices.Index(s.order, name)
	if ok {
		s.invoked[name]++
		s.payloads = append(s.payloads, string(payload))
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
		return
	}
	if s.fnError != nil && s.fnError(i) {
		w.Header().Set("X-Gatehouse-Function-Error", "Unhandled")
	}
	w.Write([]byte(`{"statusCode":200}`))
}

func (s *adminServer) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.deployed[name]; !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	delete(s.deployed, name)
	s.deleted = append(s.deleted, name)
	w.WriteHeader(http.StatusNoContent)
}

func TestColdDeploysDistinctCopies(t *testing.T) {
	s := newAdminServer(t, nil)
	src := testBundle(t)
	res, err := RunCold(context.Background(), ColdConfig{
		Admin: s.srv.URL, Token: "tok", Bundle: src, Functions: 12, Prefix: "ct-", Warm: true,
		Payload: []byte(`{"x":1}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployed != 12 || res.First.Count() != 12 || res.Warm.Count() != 12 || res.Deploy.Count() != 12 || res.ErrorCount() != 0 {
		t.Fatalf("deployed %d, first %d, warm %d, deploys timed %d, errors %v; want 12 each and no errors",
			res.Deployed, res.First.Count(), res.Warm.Count(), res.Deploy.Count(), res.Errors)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) != 12 {
		t.Fatalf("the server got %d deploys", len(s.order))
	}
	names := map[string]bool{}
	for i, name := range s.order {
		if names[name] {
			t.Errorf("name %s used twice", name)
		}
		names[name] = true
		if !strings.HasPrefix(name, "ct-") || name != res.Functions[i].Name {
			t.Errorf("function %d: server saw %s, result says %s", i, name, res.Functions[i].Name)
		}
		if s.invoked[name] != 2 {
			t.Errorf("%s invoked %d times, want 2 (first and warm)", name, s.invoked[name])
		}
	}
	// Every copy was deleted, and none is left.
	if len(s.deployed) != 0 || len(s.deleted) != 12 || res.Deleted != 12 {
		t.Errorf("deleted %d (result %d), %d left", len(s.deleted), res.Deleted, len(s.deployed))
	}
	for _, p := range s.payloads {
		if p != `{"x":1}` {
			t.Fatalf("payload %q", p)
		}
	}
}

func TestRenameBundle(t *testing.T) {
	src := testBundle(t)
	out, err := RenameBundle(src, "copy-01")
	if err != nil {
		t.Fatal(err)
	}
	b, err := functions.ReadBundle(bytes.NewReader(out), int64(len(out)), functions.BundleLimits{})
	if err != nil {
		t.Fatalf("the copy does not read as a bundle: %v", err)
	}
	m := b.Manifest
	if m.Name != "copy-01" || m.MinWarm != 0 || m.MemoryMB != 256 || m.Environment["GREETING"] != "hi" {
		t.Errorf("manifest %+v: want name copy-01, minWarm 0, memory 256 and the environment kept", m)
	}
	if !bytes.Equal(b.Module, testModule) || !slices.Equal(b.Extra, []string{"README.md"}) {
		t.Errorf("module %x, extra %v: want them copied unchanged", b.Module, b.Extra)
	}
	if _, err := RenameBundle(src, "not a name!"); err == nil {
		t.Error("an invalid name was accepted")
	}
	if _, err := RenameBundle([]byte("not a zip"), "x"); err == nil {
		t.Error("a non-zip was accepted")
	}
}

func TestColdFailuresAndCleanup(t *testing.T) {
	s := newAdminServer(t, func(s *adminServer) {
		s.failDeploy = func(i int) bool { return i == 1 }
		s.fnError = func(i int) bool { return i == 0 }
	})
	res, err := RunCold(context.Background(), ColdConfig{Admin: s.srv.URL, Token: "tok", Bundle: testBundle(t), Functions: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployed != 3 || res.Errors["deploy: status 400"] != 1 || res.Errors["invoke first: function error"] != 1 || res.ErrorCount() != 2 {
		t.Errorf("deployed %d, errors %v; want 3 deployed, one 400 and one function error", res.Deployed, res.Errors)
	}
	if res.First.Count() != 3 || res.Deleted != 3 {
		t.Errorf("first invocations %d, deleted %d; want 3 and 3", res.First.Count(), res.Deleted)
	}
	var text bytes.Buffer
	res.WriteText(&text)
	if !strings.Contains(text.String(), "error      deploy: status 400: 1") || !strings.Contains(text.String(), "first      3 invocations") {
		t.Errorf("text summary:\n%s", text.String())
	}

	// A wrong token: nothing is deployed.
	res, err = RunCold(context.Background(), ColdConfig{Admin: s.srv.URL, Token: "nope", Bundle: testBundle(t), Functions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deployed != 0 || res.Errors["deploy: status 401"] != 2 {
		t.Errorf("deployed %d, errors %v; want two 401s", res.Deployed, res.Errors)
	}
}

func TestColdCancelStillDeletes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newAdminServer(t, func(s *adminServer) {
		s.afterDeploy = func(i int) {
			if i == 2 {
				cancel()
			}
		}
	})
	res, err := RunCold(ctx, ColdConfig{Admin: s.srv.URL, Token: "tok", Bundle: testBundle(t), Functions: 10})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) != 3 || len(s.deployed) != 0 || res.Deleted != len(res.Functions) {
		t.Errorf("deployed %d, left %d, deleted %d of %d; want the run to stop after 3 and delete what it made",
			len(s.order), len(s.deployed), res.Deleted, len(res.Functions))
	}
}

func TestColdKeep(t *testing.T) {
	s := newAdminServer(t, nil)
	res, err := RunCold(context.Background(), ColdConfig{Admin: s.srv.URL, Token: "tok", Bundle: testBundle(t), Functions: 2, Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deployed) != 2 || len(s.deleted) != 0 || !res.Kept {
		t.Errorf("kept %d, deleted %d; want both kept", len(s.deployed), len(s.deleted))
	}
}

func TestColdRefused(t *testing.T) {
	b := testBundle(t)
	for _, cfg := range []ColdConfig{
		{Admin: "http://10.0.0.1:8081", Token: "t", Bundle: b},
		{Admin: "http://127.0.0.1:1", Token: "", Bundle: b},
		{Admin: "http://127.0.0.1:1", Token: "t", Bundle: []byte("not a zip")},
		{Admin: "http://127.0.0.1:1", Token: "t", Bundle: b, Functions: MaxColdFunctions + 1},
		{Admin: "http://127.0.0.1:1", Token: "t", Bundle: b, Duration: time.Hour},
		{Admin: "http://127.0.0.1:1", Token: "t", Bundle: b, Prefix: strings.Repeat("x", 64)}, // names too long
	} {
		if _, err := RunCold(context.Background(), cfg); err == nil {
			t.Errorf("%+v: accepted", cfg)
		}
	}
}

func TestColdCLI(t *testing.T) {
	s := newAdminServer(t, nil)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "src.zip")
	if err := os.WriteFile(bundle, testBundle(t), 0o644); err != nil {
		t.Fatal(err)
	}
	// The admin address and token from a data directory, as a running node leaves them.
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "run"), 0o755)
	os.WriteFile(filepath.Join(data, "admin.token"), []byte("tok\n"), 0o600)
	addr, _ := json.Marshal(map[string]string{"url": s.srv.URL})
	os.WriteFile(filepath.Join(data, "run", "admin.json"), addr, 0o600)
	t.Setenv("GATEHOUSE_TOKEN", "")

	report := filepath.Join(dir, "cold.html")
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"cold", "--data", data, "--bundle", bundle, "--functions", "3", "--warm", "--json", "--report", report})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	var sum ColdSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("output %s: %v", out.String(), err)
	}
	if sum.Invoked != 3 || sum.Warm != 3 || sum.Deleted != 3 || sum.Errors != 0 || len(sum.Functions) != 3 ||
		sum.FirstMS["p99"] <= 0 || sum.Bundle != "src" {
		t.Errorf("summary %s", out.String())
	}
	page, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if svgs, _ := checkHTML(t, page); svgs != 3 {
		t.Errorf("report has %d charts, want 3 (first, warm, deploy)", svgs)
	}

	cmd = NewCommand(&out, &errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs([]string{"cold", s.srv.URL, "--data", filepath.Join(dir, "none"), "--bundle", bundle})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "no admin token") {
		t.Errorf("without a token: %v", err)
	}
}
