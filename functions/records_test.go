package functions

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// recordManifestYAML is the manifest of testdata/records/ver.orders.3.json: every key set, durations
// that are not whole minutes, a secret.
const recordManifestYAML = `version: 1
name: orders
abi: reactor
module: bin/orders.wasm
memory: 512
timeout: 1500ms
environment:
  TABLE: orders
  PORT: "08080"
  EMPTY: ""
  DB_PASSWORD: s3cret
secrets: [DB_PASSWORD]
maxConcurrency: 50
minWarm: 2
idleTimeout: 90s
`

// recordTestKey is the registry secret key the records in testdata/records were sealed with.
func recordTestKey() []byte {
	key := make([]byte, SecretKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	return key
}

// TestStoredVersionRecords: version records as an earlier Gatehouse stored them (testdata/records,
// written by the code before the function settings moved to internal/spec) still load, give the
// manifest they were made from, and the same manifest is stored today as the same bytes with the
// same ManifestSHA256, so a publish of it is still the same version.
func TestStoredVersionRecords(t *testing.T) {
	keys, err := newSecretKeys(recordTestKey())
	if err != nil {
		t.Fatal(err)
	}
	plain := NewManifest("plain")
	for _, tc := range []struct {
		file string
		want func() (*Manifest, error)
	}{
		{"ver.orders.3.json", func() (*Manifest, error) { return ParseManifest([]byte(recordManifestYAML)) }},
		{"ver.plain.1.json", func() (*Manifest, error) { return &plain, nil }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "records", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.TrimSuffix(data, []byte("\n"))
			v, err := decodeVersion(tc.file[:len(tc.file)-len(".json")], data, 7)
			if err != nil {
				t.Fatal(err)
			}
			var secrets map[string]string
			if v.SealedSecrets != nil {
				if secrets, err = keys.open(v.SealedSecrets, v.Function, v.FunctionID, v.Version); err != nil {
					t.Fatal(err)
				}
			}
			got, err := v.Manifest.Manifest(secrets)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tc.want()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the record gives\n%+v\nwant\n%+v", got, want)
			}

			rec, sec := NewManifestRecord(want)
			if !reflect.DeepEqual(rec, v.Manifest) || !reflect.DeepEqual(sec, secrets) {
				t.Errorf("stored today as %+v (secrets %v); the record holds %+v (secrets %v)", rec, sec, v.Manifest, secrets)
			}
			digest := ""
			if len(sec) > 0 {
				digest = keys.secretsDigest(sec)
			}
			if d, err := manifestDigest(rec, digest); err != nil || d != v.ManifestSHA256 {
				t.Errorf("ManifestSHA256 today %s (%v); the record's %s", d, err, v.ManifestSHA256)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("the record encodes today as\n%s\nstored as\n%s", out, data)
			}
		})
	}
}

// TestManifestJSON: a Manifest's JSON stays the one `gatehouse up` has always hashed into the bundle
// digests it keeps in the data directory (stack-deploys.json): were it to change, the first start after
// an upgrade would publish every stack file function again, over versions deployed since with
// `gatehouse deploy`.
func TestManifestJSON(t *testing.T) {
	m, err := ParseManifest([]byte(recordManifestYAML))
	if err != nil {
		t.Fatal(err)
	}
	plain := NewManifest("plain")
	for _, tc := range []struct {
		m    *Manifest
		want string
	}{
		{m, `{"Version":1,"Name":"orders","ABI":"reactor","Module":"bin/orders.wasm","MemoryMB":512,"Timeout":1500000000,` +
			`"Environment":{"DB_PASSWORD":"s3cret","EMPTY":"","PORT":"08080","TABLE":"orders"},"Secrets":["DB_PASSWORD"],` +
			`"MaxConcurrency":50,"MinWarm":2,"IdleTimeout":90000000000}`},
		{&plain, `{"Version":1,"Name":"plain","ABI":"","Module":"function.wasm","MemoryMB":128,"Timeout":3000000000,` +
			`"Environment":{},"Secrets":null,"MaxConcurrency":0,"MinWarm":0,"IdleTimeout":300000000000}`},
	} {
		got, err := json.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
		var back Manifest
		if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(&back, tc.m) {
			t.Errorf("read back as %+v (%v), want %+v", back, err, *tc.m)
		}
	}
}

// A manifest that names the default runtime is the same manifest, in JSON and in its record, as one
// that does not; another runtime is refused.
func TestManifestRuntime(t *testing.T) {
	base := "version: 1\nname: f\n"
	plain, err := ParseManifest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	named, err := ParseManifest([]byte(base + "runtime: wasm\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(plain)
	b, _ := json.Marshal(named)
	ra, _ := NewManifestRecord(plain)
	rb, _ := NewManifestRecord(named)
	if string(a) != string(b) || !reflect.DeepEqual(ra, rb) || named.RuntimeName() != "wasm" {
		t.Errorf("runtime: wasm changes the manifest: %s / %s, %+v / %+v", a, b, ra, rb)
	}
	_, err = ParseManifest([]byte(base + "runtime: ruby3.3\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "function.yaml:3:10: runtime: the ruby3.3 runtime is not available") {
		t.Errorf("runtime ruby3.3: %v", err)
	}
	// A process runtime's module is its package.
	m, err := ParseManifest([]byte(base + "runtime: nodejs20.x\nhandler: index.handler\nisolation: none\n"))
	if err != nil || m.Module != DefaultPackageFile || m.Handler != "index.handler" {
		t.Errorf("a nodejs20.x manifest: %+v %v", m, err)
	}
	rec, _ := NewManifestRecord(m)
	if back, err := rec.Manifest(nil); err != nil || back.Handler != "index.handler" || back.Isolation != "none" || back.Runtime != "nodejs20.x" {
		t.Errorf("read back from its record: %+v %v", back, err)
	}
}

// snapStart: true is in a manifest's function.yaml, JSON and record only when set, and comes back
// from each; a manifest without it keeps the JSON (and so the digest) it had before functions had it.
func TestManifestSnapStart(t *testing.T) {
	base := "version: 1\nname: f\n"
	plain, err := ParseManifest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest([]byte(base + "snapStart: true\n"))
	if err != nil || !m.SnapStart || plain.SnapStart {
		t.Fatalf("snapStart: true gives %+v (%v); without it %+v", m, err, plain)
	}
	if off, err := ParseManifest([]byte(base + "snapStart: false\n")); err != nil || !reflect.DeepEqual(off, plain) {
		t.Errorf("snapStart: false gives %+v (%v), want the manifest without it", off, err)
	}

	yml, err := m.Marshal()
	if err != nil || !strings.Contains(string(yml), "\nidleTimeout: 5m\nsnapStart: true\n") {
		t.Errorf("Marshal: %v\n%s", err, yml)
	}
	if yml, _ := plain.Marshal(); strings.Contains(string(yml), "snapStart") {
		t.Errorf("Marshal of a manifest without snapStart writes it:\n%s", yml)
	}
	if back, err := ParseManifest(yml); err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("function.yaml round trip: %+v (%v), want %+v", back, err, m)
	}

	j, err := json.Marshal(m)
	if err != nil || !strings.HasSuffix(string(j), `,"SnapStart":true}`) {
		t.Errorf("JSON: %s %v", j, err)
	}
	var back Manifest
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(&back, m) {
		t.Errorf("JSON round trip: %+v (%v)", back, err)
	}
	if j, _ := json.Marshal(plain); strings.Contains(string(j), "SnapStart") {
		t.Errorf("the JSON of a manifest without snapStart names it: %s", j)
	}

	rec, _ := NewManifestRecord(m)
	rj, err := json.Marshal(rec)
	if err != nil || !strings.Contains(string(rj), `"snapStart":true`) {
		t.Errorf("record: %s %v", rj, err)
	}
	var stored ManifestRecord
	if err := json.Unmarshal(rj, &stored); err != nil {
		t.Fatal(err)
	}
	if got, err := stored.Manifest(nil); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("from its record: %+v (%v), want %+v", got, err, m)
	}
	prec, _ := NewManifestRecord(plain)
	if pj, _ := json.Marshal(prec); strings.Contains(string(pj), "snapStart") {
		t.Errorf("the record of a manifest without snapStart names it: %s", pj)
	}
}

// TestManifestJSONCarriesAsyncAndPublish: a manifest's JSON (what `gatehouse up` hashes to see that
// a stack file's function changed) carries its async settings and publish subjects, and leaves them
// out when unset, so that older digests stay as they were.
func TestManifestJSONCarriesAsyncAndPublish(t *testing.T) {
	base := "version: 1\nname: f\n"
	plain, err := ParseManifest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest([]byte(base + "async:\n  maximumRetryAttempts: 0\nallowedPublishSubjects: [orders.*]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(plain)
	j, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pj), "Async") || strings.Contains(string(pj), "AllowedPublishSubjects") {
		t.Errorf("the JSON of a manifest without them names them: %s", pj)
	}
	if string(j) == string(pj) {
		t.Fatalf("async settings and publish subjects do not change the manifest's JSON: %s", j)
	}
	var back Manifest
	if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(&back, m) {
		t.Errorf("JSON round trip: %+v (%v), want %+v", back, err, m)
	}
}
