package stackfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Decoding each section of a stack file into its spec type.

func (d *decoder) stack(root ast.Node) (*spec.Stack, order, error) {
	var ord order
	if root == nil {
		return nil, ord, &Error{File: d.file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the stack file is empty; a stack file starts with \"version: %d\"", spec.SchemaVersion)}
	}
	if v, _, err := d.resolve(nil, root); err == nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return nil, ord, d.errAt(root, nil, "a stack file is a mapping of version, name, functions, apis, iam and usagePlans; got %s", describe(v))
		}
	}
	es, err := d.entries(nil, root)
	if err != nil {
		return nil, ord, err
	}
	// The schema version comes first: a file for another version may have other keys.
	ve, ok := findEntry(es, "version")
	if !ok {
		return nil, ord, &Error{File: d.file, Line: 1, Column: 1, Path: "version",
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", spec.SchemaVersion)}
	}
	version, err := d.integer([]string{"version"}, ve.val, "")
	if err != nil {
		return nil, ord, err
	}
	if version != spec.SchemaVersion {
		return nil, ord, d.errAt(ve.val, []string{"version"},
			"version %d is not supported; this Gatehouse reads version %d", version, spec.SchemaVersion)
	}
	f, err := d.byKey(nil, es, []string{"version", "name", "functions", "apis", "iam", "usagePlans"})
	if err != nil {
		return nil, ord, err
	}
	s := &spec.Stack{Version: version, Name: spec.DefaultStackName, Functions: map[string]spec.Function{}, APIs: map[string]spec.API{},
		IAM: spec.IAM{Region: spec.DefaultRegion}}
	if e, ok := f["name"]; ok {
		if s.Name, err = d.str([]string{"name"}, e.val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["functions"]; ok {
		fns, err := d.entries([]string{"functions"}, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, fe := range fns {
			fn, err := d.function(fe)
			if err != nil {
				return nil, ord, err
			}
			s.Functions[fn.Name] = fn
			ord.funcs = append(ord.funcs, fn.Name)
		}
	}
	if e, ok := f["apis"]; ok {
		apis, err := d.entries([]string{"apis"}, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, ae := range apis {
			api, err := d.api([]string{"apis", ae.key}, ae)
			if err != nil {
				return nil, ord, err
			}
			s.APIs[api.Name] = api
			ord.apis = append(ord.apis, api.Name)
		}
	}
	if e, ok := f["iam"]; ok {
		if s.IAM, err = d.iam(e.val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["usagePlans"]; ok {
		path := []string{"usagePlans"}
		plans, err := d.entries(path, e.val)
		if err != nil {
			return nil, ord, err
		}
		for _, pe := range plans {
			p, err := d.usagePlan(sub(path, pe.key), pe)
			if err != nil {
				return nil, ord, err
			}
			if s.UsagePlans == nil {
				s.UsagePlans = map[string]spec.UsagePlan{}
			}
			s.UsagePlans[p.Name] = p
			ord.plans = append(ord.plans, p.Name)
		}
	}
	return s, ord, nil
}

func (d *decoder) iam(n ast.Node) (spec.IAM, error) {
	path := []string{"iam"}
	out := spec.IAM{Region: spec.DefaultRegion}
	f, err := d.fields(path, n, "region", "accessKeys")
	if err != nil {
		return out, err
	}
	if e, ok := f["region"]; ok {
		if out.Region, err = d.str(sub(path, "region"), e.val); err != nil {
			return out, err
		}
	}
	e, ok := f["accessKeys"]
	if !ok {
		return out, nil
	}
	keysPath := sub(path, "accessKeys")
	items, err := d.list(keysPath, e.val)
	if err != nil {
		return out, err
	}
	for i, item := range items {
		k, err := d.accessKey(sub(keysPath, spec.Index(i)), item)
		if err != nil {
			return out, err
		}
		out.AccessKeys = append(out.AccessKeys, k)
	}
	return out, nil
}

func (d *decoder) accessKey(path []string, n ast.Node) (spec.AccessKey, error) {
	var k spec.AccessKey
	v, _, err := d.resolve(path, n)
	if err != nil {
		return k, err
	}
	if _, ok := v.(*ast.MappingNode); !ok {
		// Not describe(v): a string here may well be a secret.
		return k, d.errAt(n, path, "want a mapping of id and secret (or secretFromEnv), got %s", kind(v))
	}
	f, err := d.fields(path, n, "id", "secret", "secretFromEnv")
	if err != nil {
		return k, err
	}
	if k.ID, err = d.requiredStr(f, n, path, "id", "the access key ID, such as AKIAIOSFODNN7EXAMPLE"); err != nil {
		return k, err
	}
	se, hasSecret := f["secret"]
	ee, hasEnv := f["secretFromEnv"]
	switch {
	case hasSecret && hasEnv:
		return k, d.errAt(ee.keyAt, path, "give either secret or secretFromEnv, not both")
	case hasSecret:
		k.Secret, err = d.secret(sub(path, "secret"), se.val)
		return k, err
	case hasEnv:
		envPath := sub(path, "secretFromEnv")
		name, err := d.str(envPath, ee.val)
		if err != nil {
			return k, err
		}
		if !spec.ValidEnvName(name) {
			return k, d.errAt(ee.val, envPath, "%s is not an environment variable name: want letters, digits and _, not starting with a digit", yamlnode.QuoteShort(name))
		}
		secret, _ := os.LookupEnv(name)
		if secret == "" {
			return k, d.errAt(ee.val, envPath, "the environment variable %s is not set or empty; set it to the secret access key", name)
		}
		if msg := spec.CheckSecret(secret); msg != "" {
			return k, d.errAt(ee.val, envPath, "the secret in the environment variable %s %s", name, msg)
		}
		k.Secret = secret
		return k, nil
	}
	return k, d.errAt(n, path, "the access key has no secret: add secretFromEnv: VARIABLE (or secret: …)")
}

// secret decodes a secret access key as str does, without quoting the value in any message.
func (d *decoder) secret(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	switch v.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := yamlnode.ScalarText(v)
		return s, nil
	}
	s, ok := yamlnode.ScalarText(v)
	switch {
	case ok && tagged:
		return s, nil
	case ok:
		return "", d.errAt(n, path, "want a string, got %s (quote it; the value is not shown)", kind(v))
	}
	return "", d.errAt(n, path, "want a string, got %s", kind(v))
}

// kind names the kind of a resolved value without quoting it.

func (d *decoder) function(fe entry) (spec.Function, error) {
	path := []string{"functions", fe.key}
	fn := spec.Function{Name: fe.key, FunctionSettings: spec.DefaultFunctionSettings()}
	fn.Line, fn.Column = yamlnode.Position(fe.keyAt)
	f, err := d.fields(path, fe.val, "source", "memory", "timeout", "environment", "maxConcurrency", "minWarm", "idleTimeout")
	if err != nil {
		return fn, err
	}
	se, err := d.required(f, fe.keyAt, path, "source", "the function's Go source directory or .wasm file")
	if err != nil {
		return fn, err
	}
	if err := d.source(&fn, sub(path, "source"), se.val); err != nil {
		return fn, err
	}
	if e, ok := f["memory"]; ok {
		if fn.MemoryMB, err = d.integer(sub(path, "memory"), e.val, " of MB"); err != nil {
			return fn, err
		}
	}
	if e, ok := f["timeout"]; ok {
		if fn.Timeout, err = d.duration(sub(path, "timeout"), e.val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["environment"]; ok {
		envPath := sub(path, "environment")
		vars, err := d.entries(envPath, e.val)
		if err != nil {
			return fn, err
		}
		size := 0
		for _, v := range vars {
			val, err := d.text(sub(envPath, v.key), v.val)
			if err != nil {
				return fn, err
			}
			// Stop early on a huge environment (aliases can repeat one many times).
			if size += len(v.key) + len(val); size > spec.MaxEnvironmentSize {
				return fn, d.errAt(e.keyAt, envPath, "%s", spec.EnvSizeMessage(size, true))
			}
			fn.Environment[v.key] = val
		}
	}
	if e, ok := f["maxConcurrency"]; ok {
		if fn.MaxConcurrency, err = d.integer(sub(path, "maxConcurrency"), e.val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["minWarm"]; ok {
		if fn.MinWarm, err = d.integer(sub(path, "minWarm"), e.val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["idleTimeout"]; ok {
		if fn.IdleTimeout, err = d.duration(sub(path, "idleTimeout"), e.val); err != nil {
			return fn, err
		}
	}
	return fn, nil
}

// source resolves and stats a function's source and sets Source and Kind.
func (d *decoder) source(fn *spec.Function, path []string, n ast.Node) error {
	src, err := d.str(path, n)
	if err != nil {
		return err
	}
	if strings.TrimSpace(src) == "" {
		return d.errAt(n, path, "empty; want a Go source directory or a .wasm file")
	}
	if strings.ContainsRune(src, 0) {
		return d.errAt(n, path, "contains a NUL byte")
	}
	abs := src
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.errAt(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(src), abs)
	case err != nil:
		return d.errAt(n, path, "cannot use %s: %v", yamlnode.QuoteShort(src), err)
	case info.IsDir():
		fn.Kind = spec.SourceGo
	case info.Mode().IsRegular() && strings.HasSuffix(abs, ".wasm"):
		fn.Kind = spec.SourceWasm
	default:
		return d.errAt(n, path, "%s is neither a directory of Go source nor a .wasm file", yamlnode.QuoteShort(src))
	}
	fn.Source = abs
	return nil
}

// number decodes a number, whole or with a fraction.

func (d *decoder) usagePlan(path []string, pe entry) (spec.UsagePlan, error) {
	p := spec.UsagePlan{Name: pe.key}
	f, err := d.fields(path, pe.val, "throttle", "quota")
	if err != nil {
		return p, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(sub(path, "throttle"), e)
		if err != nil {
			return p, err
		}
		p.Throttle = &t
	}
	if e, ok := f["quota"]; ok {
		qPath := sub(path, "quota")
		g, err := d.fields(qPath, e.val, "limit", "period")
		if err != nil {
			return p, err
		}
		q := spec.Quota{}
		le, err := d.required(g, e.keyAt, qPath, "limit", "the requests each key may make per period, %d to %d", spec.MinQuotaLimit, spec.MaxQuotaLimit)
		if err != nil {
			return p, err
		}
		if q.Limit, err = d.integer(sub(qPath, "limit"), le.val, " of requests"); err != nil {
			return p, err
		}
		if q.Period, err = d.requiredStr(g, e.keyAt, qPath, "period", "%s, %s or %s", spec.QuotaPeriodDay, spec.QuotaPeriodWeek, spec.QuotaPeriodMonth); err != nil {
			return p, err
		}
		p.Quota = &q
	}
	return p, nil
}

// throttle decodes the throttle written as the value of te.
func (d *decoder) throttle(path []string, te entry) (spec.Throttle, error) {
	var t spec.Throttle
	f, err := d.fields(path, te.val, "rate", "burst")
	if err != nil {
		return t, err
	}
	re, err := d.required(f, te.keyAt, path, "rate", "the steady rate in requests per second, more than 0 and at most %d", spec.MaxThrottleRate)
	if err != nil {
		return t, err
	}
	if t.Rate, err = d.number(sub(path, "rate"), re.val, " of requests per second"); err != nil {
		return t, err
	}
	be, err := d.required(f, te.keyAt, path, "burst", "the most requests at once, 0 to %d", spec.MaxThrottleBurst)
	if err != nil {
		return t, err
	}
	if t.Burst, err = d.integer(sub(path, "burst"), be.val, " of requests"); err != nil {
		return t, err
	}
	return t, nil
}

// locate finds the position of the key (atKey) or value at path, for errors found after
// decoding. Where the path is not in the file (a default value, or a shorthand route), it returns
// the deepest key that is, and the path of what was found. It runs only on the error path.
