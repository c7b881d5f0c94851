package process

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BasePath is the PATH every process gets, after the directory of its interpreter.
const BasePath = "/usr/local/bin:/usr/bin:/bin"

// overridable are the variables Lambda lets a function's configuration set among those it defines
// itself; the function's Env wins for these, and loses for every other variable set here.
var overridable = map[string]bool{
	"LANG": true, "PATH": true, "LD_LIBRARY_PATH": true, "NODE_PATH": true, "PYTHONPATH": true,
}

// environ is the whole environment of the process: the Lambda variables describing it, then the
// function's own. Nothing of the worker's environment is in it.
func environ(cfg *Config, apiAddr, interpDir string) ([]string, error) {
	path := BasePath
	if interpDir != "" && !slices.Contains(strings.Split(BasePath, ":"), interpDir) {
		path = interpDir + ":" + BasePath
	}
	lambda := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          apiAddr,
		"_HANDLER":                        cfg.Handler,
		"LAMBDA_TASK_ROOT":                cfg.Dir,
		"LAMBDA_RUNTIME_DIR":              cfg.RuntimeDir,
		"AWS_LAMBDA_FUNCTION_NAME":        cfg.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION":     cfg.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(cfg.MemoryMB),
		"AWS_REGION":                      cfg.Region,
		"AWS_DEFAULT_REGION":              cfg.Region,
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + cfg.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME":      logStreamName(cfg.Version, time.Now()),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            path,
		"TMPDIR":                          cfg.TmpDir,
		"HOME":                            cfg.TmpDir,
	}
	if cfg.GatewayURL != "" {
		lambda["GATEHOUSE_GATEWAY_URL"] = cfg.GatewayURL
	}
	if cfg.AccessKeyID != "" && cfg.SecretAccessKey != "" {
		lambda["AWS_ACCESS_KEY_ID"], lambda["AWS_SECRET_ACCESS_KEY"] = cfg.AccessKeyID, cfg.SecretAccessKey
	}
	// Lambda leaves AWS_EXECUTION_ENV unset for provided.* runtimes.
	if cfg.Runtime != "" && !strings.HasPrefix(cfg.Runtime, "provided") {
		lambda["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + cfg.Runtime
	}
	env := make(map[string]string, len(lambda)+len(cfg.Env))
	for k, v := range cfg.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("environment variable %q: invalid name or value", k)
		}
		env[k] = v
	}
	for k, v := range lambda {
		if _, set := env[k]; set && overridable[k] {
			continue
		}
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out, nil
}

// logStreamName is Lambda's YYYY/MM/DD/[VERSION]<32 hex digits>.
func logStreamName(version string, now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + hex.EncodeToString(b[:])
}

// interpreterDir is the directory of the resolved executable when it belongs on PATH: the interpreter's
// (python3, node), not the function package's own bootstrap.
func interpreterDir(exe, pkgDir string) string {
	dir := filepath.Dir(exe)
	if rel, err := filepath.Rel(pkgDir, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "" // inside the package
	}
	return dir
}
