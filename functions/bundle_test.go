package functions

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// ---------------------------------------------------------------------------------------------
// Manifests

func TestParseManifestDefaults(t *testing.T) {
	m, err := ParseManifest([]byte("version: 1\nname: hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := NewManifest("hello")
	if !reflect.DeepEqual(*m, want) {
		t.Errorf("got  %+v\nwant %+v", *m, want)
	}
	if err := want.Validate(); err != nil {
		t.Errorf("NewManifest is not valid: %v", err)
	}
}

func TestParseManifestFull(t *testing.T) {
	in := `# every key
version: 1
name: orders-api_2
abi: reactor
module: build/orders.wasm
memory: 512
timeout: 1m30s
environment:
  TABLE: orders
  PORT: 08080        # the text as written, not a number
  DEBUG: true
  EMPTY: ""
  DB_PASSWORD: "s3cret: yes"
  MOTD: |
    hello
    world
secrets: [DB_PASSWORD]
maxConcurrency: 10
minWarm: 2
idleTimeout: 10m
snapStart: true
`
	m, err := ParseManifest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Manifest{
		Version: 1, Name: "orders-api_2", ABI: ABIReactor, Module: "build/orders.wasm",
		FunctionSettings: spec.FunctionSettings{
			MemoryMB: 512, Timeout: spec.Duration(90 * time.Second),
			Environment: map[string]string{"TABLE": "orders", "PORT": "08080", "DEBUG": "true", "EMPTY": "",
				"DB_PASSWORD": "s3cret: yes", "MOTD": "hello\nworld\n"},
			MaxConcurrency: 10, MinWarm: 2, IdleTimeout: spec.Duration(10 * time.Minute), SnapStart: true,
		},
		Secrets: []string{"DB_PASSWORD"},
	}
	if !reflect.DeepEqual(*m, want) {
		t.Errorf("got  %+v\nwant %+v", *m, want)
	}
}

func TestParseManifestFlowStyleAndComments(t *testing.T) {
	in := "%YAML 1.2\n---\n{version: 1, name: \"x\", environment: {A: b}, secrets: [A]} # one line\n...\n"
	m, err := ParseManifest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "x" || m.Environment["A"] != "b" || len(m.Secrets) != 1 {
		t.Errorf("got %+v", m)
	}
	if _, err := ParseManifest([]byte("\xef\xbb\xbfversion: 1\nname: bom\n")); err != nil {
		t.Errorf("a byte order mark: %v", err)
	}
}

// manifestErrorCases are manifests ParseManifest refuses, with the error they get. FuzzParseManifest
// starts from them.
var manifestErrorCases = []struct {
	name, in, want string
}{
	{"empty", "", `function.yaml:1:1: the manifest is empty; it starts with "version: 1" and "name: NAME"`},
	{"only comments", "# nothing\n", "function.yaml:1:1: the manifest is empty"},
	{"not a mapping", "- version: 1\n", "function.yaml:1:1: a manifest is a mapping of version, name, memory, …; got a list"},
	{"scalar", "hello\n", "function.yaml:1:1: a manifest is a mapping"},
	{"no version", "name: x\n", `function.yaml:1:1: version: required; add "version: 1" at the top of the file`},
	{"version 2", "name: x\nversion: 2\n", "function.yaml:2:10: version: version 2 is not supported; this Gatehouse reads version 1"},
	{"version string", "version: \"1\"\nname: x\n", `function.yaml:1:10: version: want a whole number, got the string "1"`},
	{"version null", "version:\nname: x\n", "function.yaml:1:1: version: want a whole number, got nothing (null)"},
	{"no name", "version: 1\nmemory: 256\n", `function.yaml:1:1: name: required: the function's name, e.g. "name: hello"`},
	{"unknown key", "version: 1\nname: x\nmemroy: 256\n", `function.yaml:3:1: memroy: unknown key (did you mean "memory"?); known keys here: version, name, runtime, handler, isolation, abi, module, memory, timeout, environment, secrets, maxConcurrency, minWarm, idleTimeout`},
	{"unknown key, case", "version: 1\nname: x\nMaxConcurrency: 2\n", `function.yaml:3:1: MaxConcurrency: unknown key (did you mean "maxConcurrency"?)`},
	{"unknown key, far", "version: 1\nname: x\nentrypoint: main\n", "function.yaml:3:1: entrypoint: unknown key; known keys here:"},
	{"duplicate key", "version: 1\nname: x\nname: y\n", `function.yaml:3:1: invalid YAML: mapping key "name" already defined at line 2, column 1`},
	{"bad name", "version: 1\nname: my.fn\n", `function.yaml:2:7: name: "my.fn" is not a valid function name: want 1 to 64 letters, digits, - and _`},
	{"long name", "version: 1\nname: " + strings.Repeat("a", 65) + "\n", "function.yaml:2:7: name: " + `"` + strings.Repeat("a", 40) + `"… is not a valid function name`},
	{"number name", "version: 1\nname: 123\n", `function.yaml:2:7: name: want a string, got the number 123 (quote it: "123")`},
	{"empty name", "version: 1\nname: \"\"\n", `function.yaml:2:7: name: "" is not a valid function name`},
	{"list name", "version: 1\nname: [a]\n", "function.yaml:2:7: name: want a string, got a list"},
	{"bad abi", "version: 1\nname: x\nabi: wasi\n", `function.yaml:3:6: abi: "wasi" is not an ABI: want reactor or command (or leave abi out to use whichever the module exports)`},
	{"module dotdot", "version: 1\nname: x\nmodule: ../x.wasm\n", `function.yaml:3:9: module: "../x.wasm" has a .. element, which would escape the bundle; want the module's path inside the bundle, ending in .wasm, e.g. function.wasm`},
	{"module absolute", "version: 1\nname: x\nmodule: /x.wasm\n", `function.yaml:3:9: module: "/x.wasm" is an absolute path`},
	{"module backslash", "version: 1\nname: x\nmodule: 'a\\x.wasm'\n", `function.yaml:3:9: module: "a\\x.wasm" has a backslash`},
	{"module not wasm", "version: 1\nname: x\nmodule: main.go\n", `function.yaml:3:9: module: "main.go" does not end in .wasm`},
	{"module empty", "version: 1\nname: x\nmodule: ''\n", "function.yaml:3:9: module: empty; want the module's path"},
	{"memory low", "version: 1\nname: x\nmemory: 64\n", "function.yaml:3:9: memory: 64 is out of range: want 128 to 10240 (MB)"},
	{"memory high", "version: 1\nname: x\nmemory: 10241\n", "function.yaml:3:9: memory: 10241 is out of range: want 128 to 10240 (MB)"},
	{"memory float", "version: 1\nname: x\nmemory: 128.5\n", "function.yaml:3:9: memory: want a whole number of MB, got the number 128.5"},
	{"memory unit", "version: 1\nname: x\nmemory: 1GB\n", `function.yaml:3:9: memory: want a whole number of MB, got the string "1GB"`},
	{"memory huge", "version: 1\nname: x\nmemory: 99999999999999999999999\n", "function.yaml:3:9: memory: 99999999999999999999999 is too large"},
	{"timeout no unit", "version: 1\nname: x\ntimeout: 3\n", `function.yaml:3:10: timeout: 3 is not a duration: give a unit, e.g. "3s" or "3ms"`},
	{"timeout bad", "version: 1\nname: x\ntimeout: 3x\n", `function.yaml:3:10: timeout: "3x" is not a duration (want e.g. 3s or 500ms)`},
	{"timeout zero", "version: 1\nname: x\ntimeout: 0s\n", "function.yaml:3:10: timeout: 0s is out of range: want 1ms to 900s"},
	{"timeout long", "version: 1\nname: x\ntimeout: 901s\n", "function.yaml:3:10: timeout: 901s is out of range: want 1ms to 900s"},
	{"timeout list", "version: 1\nname: x\ntimeout: [3s]\n", "function.yaml:3:10: timeout: want a duration such as 3s or 500ms, got a list"},
	{"env not a map", "version: 1\nname: x\nenvironment: [A]\n", "function.yaml:3:14: environment: want a mapping, got a list"},
	{"env bad name", "version: 1\nname: x\nenvironment:\n  1X: a\n", `function.yaml:4:3: environment.1X: not a valid variable name: want letters, digits and _, not starting with a digit`},
	{"env dash name", "version: 1\nname: x\nenvironment:\n  MY-VAR: a\n", `function.yaml:4:3: environment.MY-VAR: not a valid variable name`},
	{"env reserved", "version: 1\nname: x\nenvironment:\n  AWS_REGION: eu\n", "function.yaml:4:3: environment.AWS_REGION: names starting with AWS_ or GATEHOUSE_ are reserved: Gatehouse sets them"},
	{"env reserved any case", "version: 1\nname: x\nenvironment:\n  gatehouse_x: eu\n", "function.yaml:4:3: environment.gatehouse_x: names starting with AWS_ or GATEHOUSE_ are reserved"},
	{"env null", "version: 1\nname: x\nenvironment:\n  A:\n", `function.yaml:4:3: environment.A: want a string, got nothing (null); write "" for an empty value`},
	{"env list value", "version: 1\nname: x\nenvironment:\n  A: [1]\n", "function.yaml:4:6: environment.A: want a string, got a list"},
	{"env duplicate", "version: 1\nname: x\nenvironment:\n  A: 1\n  A: 2\n", `function.yaml:5:3: invalid YAML: mapping key "A" already defined at line 4, column 3`},
	{"env too big", "version: 1\nname: x\nenvironment:\n  A: " + strings.Repeat("v", 4000) + "\n  B: " + strings.Repeat("v", 100) + "\n",
		"function.yaml:3:1: environment: the variables take 4102 bytes (names and values); the limit is 4096 (4 KB, as in AWS Lambda)"},
	{"secret not in env", "version: 1\nname: x\nenvironment: {A: b}\nsecrets:\n  - A\n  - B\n", `function.yaml:6:5: secrets[1]: "B" is not in environment: list the names of environment variables whose values are secret`},
	{"secret twice", "version: 1\nname: x\nenvironment: {A: b}\nsecrets: [A, A]\n", `function.yaml:4:14: secrets[1]: "A" is listed twice`},
	{"secrets not a list", "version: 1\nname: x\nsecrets: A\n", `function.yaml:3:10: secrets: want a list of environment variable names, got the string "A"`},
	{"secrets null item", "version: 1\nname: x\nsecrets:\n  -\n", "function.yaml:4:3: secrets[0]: want an environment variable name, got nothing (null)"},
	{"secrets null item, flow", "version: 1\nname: x\nsecrets: [A, null]\n", "function.yaml:3:10: secrets[1]: want an environment variable name, got nothing (null)"},
	{"secrets map item", "version: 1\nname: x\nsecrets:\n  - {A: b}\n", "function.yaml:4:5: secrets[0]: want an environment variable name, got a mapping"},
	{"maxConcurrency negative", "version: 1\nname: x\nmaxConcurrency: -1\n", "function.yaml:3:17: maxConcurrency: -1 is out of range: want 0 (unlimited) to 10000"},
	{"maxConcurrency high", "version: 1\nname: x\nmaxConcurrency: 10001\n", "function.yaml:3:17: maxConcurrency: 10001 is out of range: want 0 (unlimited) to 10000"},
	{"minWarm high", "version: 1\nname: x\nminWarm: 1001\n", "function.yaml:3:10: minWarm: 1001 is out of range: want 0 to 1000"},
	{"minWarm over max", "version: 1\nname: x\nmaxConcurrency: 2\nminWarm: 3\n", "function.yaml:4:10: minWarm: 3 is more than maxConcurrency (2)"},
	{"idleTimeout short", "version: 1\nname: x\nidleTimeout: 500ms\n", "function.yaml:3:14: idleTimeout: 500ms is out of range: want 1s to 24h"},
	{"idleTimeout long", "version: 1\nname: x\nidleTimeout: 25h\n", "function.yaml:3:14: idleTimeout: 25h is out of range: want 1s to 24h"},
	{"snapStart string", "version: 1\nname: x\nsnapStart: on\n", `function.yaml:3:12: snapStart: want true or false, got the string "on"`},
	{"snapStart number", "version: 1\nname: x\nsnapStart: 1\n", "function.yaml:3:12: snapStart: want true or false, got the number 1"},
	{"snapStart on a process runtime", "version: 1\nname: x\nruntime: python3.12\nhandler: app.handler\nsnapStart: true\n",
		"function.yaml:5:1: snapStart: applies to WebAssembly functions only (runtime: wasm); a python3.12 function cannot start from a snapshot: remove it"},
	{"anchor", "version: 1\nname: &n x\n", "function.yaml:2:7: YAML anchors (&) and aliases (*) are not supported in a manifest; write the value out"},
	{"alias", "version: 1\nname: x\nenvironment: {A: b}\nsecrets: [*a]\n", "function.yaml:4:11: YAML anchors (&) and aliases (*) are not supported"},
	{"tag", "version: 1\nname: !!str 123\n", "function.yaml:2:7: YAML tags (!!str) are not supported in a manifest; quote the value to make it a string"},
	{"merge key", "version: 1\nname: x\n<<: {memory: 256}\n", "function.yaml:3:1: merge keys (<<) are not supported in a manifest"},
	{"explicit key", "version: 1\n? name\n: x\n", "function.yaml:2:1: explicit keys (?) are not supported in a manifest"},
	{"flow too deep", "version: 1\nname: x\nsecrets: " + strings.Repeat("[", 20) + strings.Repeat("]", 20) + "\n", "function.yaml:3:18: [ and { nested more than 8 deep"},
	{"block too deep", "version: 1\nname: x\nsecrets: \n" + strings.Repeat("- ", 20) + "x\n", "function.yaml:4:17: nested more than 8 levels deep"},
	{"block too deep, indented", "version: 1\nname: x\na:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i:\n", "function.yaml:11:9: nested more than 8 levels deep"},
	{"two documents", "version: 1\nname: x\n---\nversion: 1\n", "function.yaml:4:1: a manifest holds one YAML document; remove this second one"},
	{"syntax", "version: 1\nname: [x\n", "function.yaml:2:7: invalid YAML: "},
	{"tab indent", "version: 1\nenvironment:\n\tA: b\n", "function.yaml:3:1: invalid YAML"},
	{"not UTF-8", "version: 1\nname: caf\xe9\n", "function.yaml:2:10: the manifest is not UTF-8 text"},
	{"NUL", "version: 1\nname: a\x00\n", "function.yaml:2:8: the manifest contains a NUL byte"},
	{"too large", "version: 1\nname: x\n#" + strings.Repeat("x", MaxManifestBytes), "function.yaml:1:1: the manifest is larger than the limit of 16384 bytes (16 KiB)"},
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range manifestErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error; got %+v", m)
			}
			var me *ManifestError
			if !errors.As(err, &me) || !errors.Is(err, ErrBadManifest) {
				t.Errorf("error %T is not a *ManifestError wrapping ErrBadManifest", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n got: %s\nwant: %s…", err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestParseManifestShapeIsFast parses the worst inputs within the shape limits and the size limit.
func TestParseManifestShapeIsFast(t *testing.T) {
	var keys strings.Builder
	keys.WriteString("version: 1\nname: x\nenvironment:\n")
	for i := 0; keys.Len() < MaxManifestBytes-16; i++ {
		fmt.Fprintf(&keys, "  K%d: v\n", i)
	}
	flow := "version: 1\nname: x\nsecrets: " + strings.Repeat("["+strings.Repeat("[", maxFlowDepth-1)+strings.Repeat("]", maxFlowDepth-1)+"],", 700) + "]\n"
	flow = flow[:min(len(flow), MaxManifestBytes)]
	for name, in := range map[string]string{"many keys": keys.String(), "deep flow, many times": flow} {
		start := time.Now()
		_, err := ParseManifest([]byte(in))
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: %v (%v)", name, d, err)
		}
	}
}

func TestManifestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Manifest)
		want string
	}{
		{"version zero", func(m *Manifest) { m.Version = 0 }, "function.yaml: version: version 0 is not supported"},
		{"no name", func(m *Manifest) { m.Name = "" }, `function.yaml: name: "" is not a valid function name`},
		{"zero memory", func(m *Manifest) { m.MemoryMB = 0 }, "function.yaml: memory: 0 is out of range"},
		{"zero timeout", func(m *Manifest) { m.Timeout = 0 }, "function.yaml: timeout: 0s is out of range: want 1ms to 900s"},
		{"zero idleTimeout", func(m *Manifest) { m.IdleTimeout = 0 }, "function.yaml: idleTimeout: 0s is out of range: want 1s to 24h"},
		{"no module", func(m *Manifest) { m.Module = "" }, "function.yaml: module: empty"},
		{"env NUL", func(m *Manifest) { m.Environment["A"] = "a\x00" }, "function.yaml: environment.A: the value contains a NUL byte"},
		{"env not UTF-8", func(m *Manifest) { m.Environment["A"] = "\xff" }, "function.yaml: environment.A: the value is not valid UTF-8"},
		{"env odd name", func(m *Manifest) { m.Environment["a b"] = "" }, `function.yaml: environment["a b"]: not a valid variable name`},
		{"secret missing", func(m *Manifest) { m.Secrets = []string{"X"} }, `function.yaml: secrets[0]: "X" is not in environment`},
		// Keys are checked in the manifest's order: the secrets come between environment and
		// maxConcurrency.
		{"environment before secrets", func(m *Manifest) { m.Environment["1A"] = ""; m.Secrets = []string{"X"}; m.MinWarm = -1 },
			"function.yaml: environment.1A: not a valid variable name"},
		{"secrets before maxConcurrency", func(m *Manifest) { m.Secrets = []string{"X"}; m.MaxConcurrency = -1; m.IdleTimeout = 0 },
			`function.yaml: secrets[0]: "X" is not in environment`},
		{"minWarm before idleTimeout", func(m *Manifest) { m.MaxConcurrency, m.MinWarm = 1, 2; m.IdleTimeout = 0 },
			"function.yaml: minWarm: 2 is more than maxConcurrency (1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewManifest("x")
			tc.edit(&m)
			err := m.Validate()
			if err == nil || err.Error() == "" || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want %s…", err, tc.want)
			}
			if _, merr := m.Marshal(); merr == nil {
				t.Error("Marshal accepted an invalid manifest")
			}
		})
	}
}

func TestManifestMarshalRoundTrip(t *testing.T) {
	m := NewManifest("123")
	m.ABI = ABICommand
	m.Module = "bin/app.wasm"
	m.MemoryMB = 10240
	m.Timeout = spec.Duration(1500 * time.Microsecond)
	m.IdleTimeout = spec.Duration(90 * time.Minute)
	m.MaxConcurrency, m.MinWarm = 5, 5
	m.SnapStart = true
	m.Environment = map[string]string{
		"PLAIN": "value", "QUOTES": `say "hi" \ 'there'`, "LINES": "a\nb\r\n\tc", "NUMBER": "08080",
		"BOOL": "true", "EMPTY": "", "UNICODE": "café ✓ \u2028 \u00a0 \U0001F600", "CONTROL": "\x01\x07\x1b\x7f",
		"SPACES": "  padded  ", "HASH": "# not a comment", "y": "n", "null": "~", "_": "-",
		"ODD": "\u0085 \ufeff \u00ad \\x41 \\u0041 --- ...",
	}
	m.Secrets = []string{"QUOTES", "y"}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(*got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v\n%s", *got, m, data)
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, data) {
		t.Errorf("Marshal is not stable:\n%s\n%s", data, again)
	}
}

// ---------------------------------------------------------------------------------------------
// Bundles

// wasmModule is the smallest valid WebAssembly module: the header alone.
var wasmModule = []byte("\x00asm\x01\x00\x00\x00")

const minimalManifest = "version: 1\nname: hello\n"

type zipEntry struct {
	name   string
	data   []byte
	mode   fs.FileMode // 0: a regular file, 0644
	method uint16      // 0: deflate, unless stored
	stored bool        // zip.Store
	flags  uint16
}

func file(name string, data string) zipEntry { return zipEntry{name: name, data: []byte(data)} }

// makeZip builds an archive of entries, in order.
func makeZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Flags: e.flags}
		if e.method != 0 {
			h.Method = e.method
		}
		if e.stored {
			h.Method = zip.Store
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		} else {
			h.SetMode(0o644)
		}
		var w io.Writer
		var err error
		if h.Method != zip.Store && h.Method != zip.Deflate {
			// An unknown method: write the bytes as they are.
			h.CRC32 = crc32.ChecksumIEEE(e.data)
			h.CompressedSize64, h.UncompressedSize64 = uint64(len(e.data)), uint64(len(e.data))
			w, err = zw.CreateRaw(h)
		} else {
			w, err = zw.CreateHeader(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goodZip(t testing.TB, extra ...zipEntry) []byte {
	return makeZip(t, append([]zipEntry{file(ManifestFile, minimalManifest), {name: DefaultModuleFile, data: wasmModule}}, extra...)...)
}

// zeros200MiB is 200 MiB of zeros, deflated (about 200 KB), with its CRC: a zip bomb's payload.
var zeros200MiB = sync.OnceValues(func() ([]byte, uint32) {
	const n = 200 << 20
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	chunk := make([]byte, 1<<20)
	crc := crc32.NewIEEE()
	for range n / len(chunk) {
		fw.Write(chunk)
		crc.Write(chunk)
	}
	fw.Close()
	return buf.Bytes(), crc.Sum32()
})

// bombZip is a bundle whose module is 200 MiB of zeros, deflated; its headers declare declared bytes.
func bombZip(t testing.TB, declared uint64) []byte {
	t.Helper()
	data, crc := zeros200MiB()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(ManifestFile)
	w.Write([]byte(minimalManifest))
	h := &zip.FileHeader{Name: DefaultModuleFile, Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(len(data)), UncompressedSize64: declared}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// corrupt flips a byte of the stored module's data in an archive made by makeZip.
func corruptModule(t testing.TB) []byte {
	z := makeZip(t, file(ManifestFile, minimalManifest), zipEntry{name: DefaultModuleFile, data: wasmModule, stored: true})
	i := bytes.Index(z, wasmModule)
	if i < 0 {
		t.Fatal("module not found")
	}
	z = bytes.Clone(z)
	z[i+7] ^= 0xff
	return z
}

// manyEntries is an archive of n empty entries, far past the entry limit.
func manyEntries(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := range n {
		if _, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("%x", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	return buf.Bytes()
}

type bundleCase struct {
	name     string
	zip      func(testing.TB) []byte
	limits   BundleLimits
	tooLarge bool   // the error wraps ErrBundleTooLarge
	want     string // the error message starts with "invalid bundle: " + want
}

func fixed(b []byte) func(testing.TB) []byte { return func(testing.TB) []byte { return b } }

func entries(es ...zipEntry) func(testing.TB) []byte {
	return func(t testing.TB) []byte { return makeZip(t, es...) }
}

var wasmEntry = zipEntry{name: DefaultModuleFile, data: wasmModule}
var manifestEntry = file(ManifestFile, minimalManifest)

// badBundles are the bundles ReadBundle refuses; FuzzReadBundle starts from the small ones.
var badBundles = []bundleCase{
	{name: "empty file", zip: fixed(nil), want: "not a zip archive (zip: not a valid zip file); make a bundle with: zip bundle.zip function.yaml function.wasm"},
	{name: "not a zip", zip: fixed([]byte("version: 1\nname: hello\n")), want: "not a zip archive"},
	{name: "a bare module", zip: fixed(wasmModule), want: "not a zip archive"},
	{name: "truncated", zip: func(t testing.TB) []byte { z := goodZip(t); return z[:len(z)-10] }, want: "not a zip archive"},
	{name: "over the bundle limit", zip: plainZip, limits: BundleLimits{MaxBundleBytes: 100}, tooLarge: true,
		want: "too large: the bundle is "},
	{name: "too many entries", zip: func(t testing.TB) []byte {
		es := []zipEntry{manifestEntry, wasmEntry}
		for i := range 15 {
			es = append(es, file(fmt.Sprintf("doc/%d.txt", i), "x"))
		}
		return makeZip(t, es...)
	}, want: "the bundle has 17 entries; the limit is 16"},
	{name: "directory over budget", zip: func(t testing.TB) []byte { return manyEntries(t, 70_000) },
		want: "the zip directory is larger than 320 KiB: too many entries (the limit is 16) or very long names"},
	{name: "absolute path", zip: entries(manifestEntry, wasmEntry, file("/etc/passwd", "x")), want: `entry "/etc/passwd" is an absolute path`},
	{name: "drive letter", zip: entries(manifestEntry, wasmEntry, file("C:/x", "x")), want: `entry "C:/x" is an absolute path`},
	{name: "dotdot", zip: entries(manifestEntry, wasmEntry, file("../../.bashrc", "x")), want: `entry "../../.bashrc" has a .. element, which would escape the bundle`},
	{name: "dotdot inside", zip: entries(manifestEntry, wasmEntry, file("a/../../b", "x")), want: `entry "a/../../b" has a .. element`},
	{name: "dotdot directory", zip: entries(manifestEntry, wasmEntry, file("../", "")), want: `entry "../" has a .. element`},
	{name: "backslash", zip: entries(manifestEntry, wasmEntry, file(`..\evil`, "x")), want: `entry "..\\evil" has a backslash`},
	{name: "dot element", zip: entries(manifestEntry, wasmEntry, file("./function.wasm", "x")), want: `entry "./function.wasm" has an empty or . element`},
	{name: "empty element", zip: entries(manifestEntry, wasmEntry, file("a//b", "x")), want: `entry "a//b" has an empty or . element`},
	{name: "empty name", zip: entries(manifestEntry, wasmEntry, file("", "x")), want: `entry "" has an empty name`},
	{name: "control character", zip: entries(manifestEntry, wasmEntry, file("a\nb", "x")), want: `entry "a\nb" has control characters in its name`},
	{name: "not UTF-8 name", zip: entries(manifestEntry, wasmEntry, file("caf\xe9", "x")), want: `entry "caf\xe9" has a name that is not UTF-8`},
	{name: "symlink", zip: entries(manifestEntry, zipEntry{name: DefaultModuleFile, data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}),
		want: `entry "function.wasm" is a symbolic link; put the file itself in the bundle`},
	{name: "named pipe", zip: entries(manifestEntry, wasmEntry, zipEntry{name: "fifo", mode: fs.ModeNamedPipe | 0o644}),
		want: `entry "fifo" is not a regular file (its mode is prw-r--r--)`},
	{name: "directory without slash", zip: entries(manifestEntry, wasmEntry, zipEntry{name: "dir", mode: fs.ModeDir | 0o755}),
		want: `entry "dir" is not a regular file`},
	{name: "duplicate module", zip: entries(manifestEntry, wasmEntry, wasmEntry), want: `two entries are named "function.wasm"`},
	{name: "duplicate manifest", zip: entries(manifestEntry, wasmEntry, file(ManifestFile, "version: 1\nname: other\n")), want: `two entries are named "function.yaml"`},
	{name: "encrypted", zip: entries(manifestEntry, zipEntry{name: DefaultModuleFile, data: wasmModule, flags: 1}),
		want: `entry "function.wasm" is encrypted; bundles are not encrypted (leave out zip's -e)`},
	{name: "unknown compression", zip: entries(manifestEntry, zipEntry{name: DefaultModuleFile, data: wasmModule, method: 12}),
		want: `entry "function.wasm" is compressed with method 12; use deflate or store`},
	{name: "corrupt module", zip: corruptModule, want: `entry "function.wasm" is corrupt (its checksum does not match)`},
	{name: "entry over the module limit", zip: plainZip, limits: BundleLimits{MaxModuleBytes: 4}, tooLarge: true,
		want: `too large: entry "function.yaml" expands to 23 bytes; the limit is 4 bytes`},
	{name: "ignored entry over the module limit", zip: func(t testing.TB) []byte {
		return goodZip(t, file("big.txt", strings.Repeat("x", 1000)))
	}, limits: BundleLimits{MaxModuleBytes: 100}, tooLarge: true, want: `too large: entry "big.txt" expands to 1000 bytes; the limit is 100 bytes`},
	{name: "zip bomb", zip: func(t testing.TB) []byte { return bombZip(t, 200<<20) }, tooLarge: true,
		want: `too large: entry "function.wasm" expands to 200 MiB; the limit is 100 MiB`},
	{name: "zip bomb, lying header", zip: func(t testing.TB) []byte { return bombZip(t, 1<<20) },
		want: `entry "function.wasm" is corrupt (it holds more data than its header says)`},
	{name: "no manifest", zip: entries(wasmEntry, file("README.md", "hi")),
		want: `no function.yaml at the top of the bundle: every bundle has a manifest naming the function (see docs/bundles.md); the bundle holds "function.wasm", "README.md"`},
	{name: "empty zip", zip: entries(), want: "no function.yaml at the top of the bundle: every bundle has a manifest naming the function (see docs/bundles.md); the bundle holds no files"},
	{name: "manifest in a directory", zip: entries(file("hello/", ""), file("hello/function.yaml", minimalManifest), zipEntry{name: "hello/function.wasm", data: wasmModule}),
		want: "function.yaml must be at the top of the bundle, not in hello/: zip the directory's contents, not the directory (cd hello && zip -r ../bundle.zip .)"},
	{name: "manifest misnamed", zip: entries(file("function.yml", minimalManifest), wasmEntry),
		want: `no function.yaml at the top of the bundle (found "function.yml": the manifest must be named function.yaml exactly)`},
	{name: "manifest is a directory", zip: entries(file("function.yaml/", ""), wasmEntry), want: "no function.yaml at the top of the bundle"},
	{name: "invalid manifest", zip: entries(file(ManifestFile, "version: 1\nname: hello\nmemory: 64\n"), wasmEntry),
		want: "function.yaml:3:9: memory: 64 is out of range: want 128 to 10240 (MB)"},
	{name: "manifest not YAML", zip: entries(file(ManifestFile, "{"), wasmEntry), want: "function.yaml:1:1: invalid YAML"},
	{name: "manifest too large", zip: entries(file(ManifestFile, minimalManifest+strings.Repeat("#\n", MaxManifestBytes)), wasmEntry),
		want: "function.yaml:1:1: the manifest is larger than the limit of 16384 bytes (16 KiB)"},
	{name: "no module", zip: entries(manifestEntry, file("README.md", "hi")),
		want: `no "function.wasm" in the bundle: function.yaml names it as the module (module:, default function.wasm); the bundle holds "function.yaml", "README.md"`},
	{name: "module under another name", zip: entries(manifestEntry, zipEntry{name: "target/app.wasm", data: wasmModule}),
		want: `no "function.wasm" in the bundle: function.yaml names it as the module (module:, default function.wasm); to use target/app.wasm, set "module: target/app.wasm" in function.yaml`},
	{name: "named module missing", zip: entries(file(ManifestFile, minimalManifest+"module: app.wasm\n"), wasmEntry),
		want: `no "app.wasm" in the bundle`},
	{name: "module is a directory", zip: entries(manifestEntry, file("function.wasm/", "")), want: `no "function.wasm" in the bundle`},
	{name: "module not wasm", zip: entries(manifestEntry, file(DefaultModuleFile, "\x7fELF\x02\x01\x01\x00rest")),
		want: `function.wasm is not a WebAssembly module: it does not start with the magic bytes \0asm (it starts with "\x7fELF")`},
	{name: "module empty", zip: entries(manifestEntry, file(DefaultModuleFile, "")),
		want: "function.wasm is not a WebAssembly module: it is 0 bytes, shorter than the 8-byte header"},
	{name: "module short", zip: entries(manifestEntry, file(DefaultModuleFile, "\x00asm")),
		want: "function.wasm is not a WebAssembly module: it is 4 bytes, shorter than the 8-byte header"},
	{name: "module is text", zip: entries(manifestEntry, file(DefaultModuleFile, ";; hi.wat\n(module)\n")),
		want: "function.wasm is WebAssembly text, not a binary module: compile it first (wat2wasm file.wat -o function.wasm)"},
	{name: "module version 2", zip: entries(manifestEntry, file(DefaultModuleFile, "\x00asm\x02\x00\x00\x00")),
		want: "function.wasm has WebAssembly version 2; Gatehouse reads version 1"},
	{name: "module is a component", zip: entries(manifestEntry, file(DefaultModuleFile, "\x00asm\x0d\x00\x01\x00")),
		want: "function.wasm is a WebAssembly component; Gatehouse runs core modules (build for wasm32-wasip1, not wasip2)"},
}

func TestReadBundleRefusals(t *testing.T) {
	for _, tc := range badBundles {
		t.Run(tc.name, func(t *testing.T) {
			z := tc.zip(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			b, err := ReadBundle(bytes.NewReader(z), int64(len(z)), tc.limits)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("accepted: %+v", b.Manifest)
			}
			if !errors.Is(err, ErrBadBundle) {
				t.Errorf("error does not wrap ErrBadBundle: %v", err)
			}
			if got := errors.Is(err, ErrBundleTooLarge); got != tc.tooLarge {
				t.Errorf("errors.Is(err, ErrBundleTooLarge) = %v, want %v", got, tc.tooLarge)
			}
			if want := "invalid bundle: " + tc.want; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n got: %s\nwant: %s…", err, want)
			}
			// Refusing costs little, whatever the bundle expands to.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if elapsed > 2*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestReadBundleManifestErrorIsWrapped(t *testing.T) {
	z := makeZip(t, file(ManifestFile, "version: 1\nname: x\nmemory: 1\n"), wasmEntry)
	_, err := ReadBundle(bytes.NewReader(z), int64(len(z)), BundleLimits{})
	var me *ManifestError
	if !errors.As(err, &me) || me.Line != 3 || me.Path != "memory" || !errors.Is(err, ErrBadManifest) {
		t.Errorf("got %v (%#v)", err, me)
	}
}

func TestReadBundleIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	z := goodZip(t)
	r := failingReaderAt{r: bytes.NewReader(z), err: boom}
	_, err := ReadBundle(r, int64(len(z)), BundleLimits{})
	if !errors.Is(err, boom) || errors.Is(err, ErrBadBundle) {
		t.Errorf("got %v, want the reader's error without ErrBadBundle", err)
	}
}

type failingReaderAt struct {
	r   io.ReaderAt
	err error
}

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

func TestReadBundleAccepts(t *testing.T) {
	big := bytes.Repeat([]byte{0}, 1<<20)
	copy(big, wasmModule)
	for _, tc := range []struct {
		name  string
		zip   []byte
		want  Manifest
		mod   []byte
		extra []string
	}{
		{name: "minimal", zip: goodZip(t), want: NewManifest("hello"), mod: wasmModule},
		{name: "stored, not deflated", zip: makeZip(t, zipEntry{name: ManifestFile, data: []byte(minimalManifest), stored: true},
			zipEntry{name: DefaultModuleFile, data: wasmModule, stored: true}), want: NewManifest("hello"), mod: wasmModule},
		{name: "extra files and directories", zip: goodZip(t, file("README.md", "hi"), file("src/", ""), file("src/main.rs", "fn main() {}"), file("a..b", "")),
			want: NewManifest("hello"), mod: wasmModule, extra: []string{"README.md", "a..b", "src/main.rs"}},
		{name: "module in a directory", zip: makeZip(t, file(ManifestFile, minimalManifest+"module: target/wasm32-wasip1/release/app.wasm\n"),
			zipEntry{name: "target/wasm32-wasip1/release/app.wasm", data: big}),
			want: func() Manifest {
				m := NewManifest("hello")
				m.Module = "target/wasm32-wasip1/release/app.wasm"
				return m
			}(), mod: big},
		{name: "module at the limit", zip: makeZip(t, manifestEntry, zipEntry{name: DefaultModuleFile, data: big}),
			want: NewManifest("hello"), mod: big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadBundle(bytes.NewReader(tc.zip), int64(len(tc.zip)), BundleLimits{MaxModuleBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(b.Manifest, tc.want) {
				t.Errorf("manifest %+v, want %+v", b.Manifest, tc.want)
			}
			if !bytes.Equal(b.Module, tc.mod) {
				t.Errorf("module of %d bytes, want %d", len(b.Module), len(tc.mod))
			}
			if sum := sha256.Sum256(tc.mod); b.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 %s", b.SHA256)
			}
			if !reflect.DeepEqual(b.Extra, tc.extra) {
				t.Errorf("Extra %q, want %q", b.Extra, tc.extra)
			}
		})
	}
}

// TestReadBundleInfoZIP reads archives made by Info-ZIP's zip (see testdata/bundles/README.md).
func TestReadBundleInfoZIP(t *testing.T) {
	for _, tc := range []struct {
		file, err string
		extra     []string
	}{
		{file: "infozip.zip", extra: []string{"README.md", "src/main.go"}},
		{file: "symlink.zip", err: `invalid bundle: entry "link.wasm" is a symbolic link`},
		{file: "nested.zip", err: "invalid bundle: function.yaml must be at the top of the bundle, not in hello/"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "bundles", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			b, err := ReadBundle(f, st.Size(), BundleLimits{})
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("got %v, want %s…", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Manifest.Name != "hello" || !bytes.Equal(b.Module, wasmModule) || !reflect.DeepEqual(b.Extra, tc.extra) {
				t.Errorf("got %+v", b)
			}
		})
	}
}

func TestWriteBundleRoundTrip(t *testing.T) {
	m := NewManifest("orders")
	m.ABI = ABIReactor
	m.Module = "orders.wasm"
	m.Environment = map[string]string{"TABLE": "orders", "TOKEN": "s3cret"}
	m.Secrets = []string{"TOKEN"}
	module := append(bytes.Clone(wasmModule), bytes.Repeat([]byte("code"), 10000)...)
	var first, second bytes.Buffer
	if err := WriteBundle(&first, m, module); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(&second, m, module); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("the same inputs gave different bundles")
	}
	b, err := ReadBundle(bytes.NewReader(first.Bytes()), int64(first.Len()), BundleLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Manifest, m) || !bytes.Equal(b.Module, module) || b.Extra != nil {
		t.Errorf("round trip: %+v", b)
	}
	if first.Len() > len(module)/10 {
		t.Errorf("the bundle is %d bytes for a %d-byte module: not compressed?", first.Len(), len(module))
	}
	// The manifest comes first, so `unzip -p bundle.zip function.yaml` and streaming readers find it early.
	zr, _ := zip.NewReader(bytes.NewReader(first.Bytes()), int64(first.Len()))
	if zr.File[0].Name != ManifestFile || !zr.File[0].Modified.Equal(bundleTime) || zr.File[1].Mode() != 0o644 {
		t.Errorf("entries: %s %v %v", zr.File[0].Name, zr.File[0].Modified, zr.File[1].Mode())
	}
}

func TestWriteBundleRefuses(t *testing.T) {
	bad := NewManifest("x")
	bad.MemoryMB = 1
	if err := WriteBundle(io.Discard, bad, wasmModule); !errors.Is(err, ErrBadManifest) {
		t.Errorf("invalid manifest: %v", err)
	}
	if err := WriteBundle(io.Discard, NewManifest("x"), []byte("(module)")); !errors.Is(err, ErrBadBundle) ||
		!strings.Contains(err.Error(), "function.wasm is WebAssembly text") {
		t.Errorf("not wasm: %v", err)
	}
}

// ---------------------------------------------------------------------------------------------
// Fuzzing

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(minimalManifest))
	good := NewManifest("fuzz")
	good.Environment = map[string]string{"A": "b\n", "S": "x"}
	good.Secrets = []string{"S"}
	data, _ := good.Marshal()
	f.Add(data)
	for _, tc := range manifestErrorCases {
		if len(tc.in) <= 4096 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error %T is not a *ManifestError: %v", err, err)
			}
			if me.Line < 1 || me.Column < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed a manifest that does not validate: %v", err)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("Marshal wrote what ParseManifest refuses: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", again, m, out)
		}
	})
}

func FuzzReadBundle(f *testing.F) {
	for _, tc := range badBundles {
		if z := tc.zip(f); len(z) <= 8<<10 {
			f.Add(z)
		}
	}
	f.Add(goodZip(f, file("README.md", "hi")))
	var buf bytes.Buffer
	m := NewManifest("fuzz")
	m.Environment = map[string]string{"A": "b"}
	m.Secrets = []string{"A"}
	WriteBundle(&buf, m, wasmModule)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBundle(bytes.NewReader(data), int64(len(data)), BundleLimits{MaxModuleBytes: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error does not wrap ErrBadBundle: %v", err)
			}
			return
		}
		if !bytes.HasPrefix(b.Module, wasmHeader) {
			t.Fatalf("accepted a module without the header: %q", b.Module[:min(len(b.Module), 8)])
		}
		if err := b.Manifest.Validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		// What was read can be written and read back.
		var out bytes.Buffer
		if err := WriteBundle(&out, b.Manifest, b.Module); err != nil {
			t.Fatalf("WriteBundle refused what ReadBundle accepted: %v", err)
		}
		again, err := ReadBundle(bytes.NewReader(out.Bytes()), int64(out.Len()), BundleLimits{})
		if err != nil || !reflect.DeepEqual(again.Manifest, b.Manifest) || again.SHA256 != b.SHA256 {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// BenchmarkReadBundle reads a bundle with a 3.3 MB module, the size of a Go function.
func BenchmarkReadBundle(b *testing.B) {
	module := make([]byte, 3300<<10)
	copy(module, wasmModule)
	for i := 8; i < len(module); i++ {
		module[i] = byte(i * 7 % 251 % 64) // compressible, like code
	}
	var buf bytes.Buffer
	if err := WriteBundle(&buf, NewManifest("bench"), module); err != nil {
		b.Fatal(err)
	}
	z := buf.Bytes()
	b.SetBytes(int64(len(module)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadBundle(bytes.NewReader(z), int64(len(z)), BundleLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func plainZip(t testing.TB) []byte { return goodZip(t) }
