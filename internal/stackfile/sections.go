package stackfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Decoding each section of a stack file into its spec type.

func (d *decoder) stack(root ast.Node) (*spec.Stack, order, error) {
	var ord order
	if root == nil {
		return nil, ord, &Error{File: d.File, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the stack file is empty; a stack file starts with \"version: %d\"", spec.SchemaVersion)}
	}
	if v, _, err := d.Resolve(nil, root); err == nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return nil, ord, d.Errorf(root, nil, "a stack file is a mapping of version, name, functions, apis, iam, usagePlans and domains; got %s", yamldecode.Describe(v))
		}
	}
	es, err := d.Entries(nil, root)
	if err != nil {
		return nil, ord, err
	}
	// The schema version comes first: a file for another version may have other keys.
	ve, ok := yamldecode.FindEntry(es, "version")
	if !ok {
		return nil, ord, &Error{File: d.File, Line: 1, Column: 1, Path: "version",
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", spec.SchemaVersion)}
	}
	version, err := d.Integer([]string{"version"}, ve.Val, "")
	if err != nil {
		return nil, ord, err
	}
	if version != spec.SchemaVersion {
		return nil, ord, d.Errorf(ve.Val, []string{"version"},
			"version %d is not supported; this Gatehouse reads version %d", version, spec.SchemaVersion)
	}
	f, err := d.ByKey(nil, es, []string{"version", "name", "functions", "apis", "iam", "usagePlans", "domains"})
	if err != nil {
		return nil, ord, err
	}
	s := &spec.Stack{Version: version, Name: spec.DefaultStackName, Functions: map[string]spec.Function{}, APIs: map[string]spec.API{},
		IAM: spec.IAM{Region: spec.DefaultRegion, AccountID: spec.DefaultAccountID}}
	if e, ok := f["name"]; ok {
		if s.Name, err = d.Str([]string{"name"}, e.Val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["functions"]; ok {
		fns, err := d.Entries([]string{"functions"}, e.Val)
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
		apis, err := d.Entries([]string{"apis"}, e.Val)
		if err != nil {
			return nil, ord, err
		}
		for _, ae := range apis {
			api, err := d.api([]string{"apis", ae.Key}, ae)
			if err != nil {
				return nil, ord, err
			}
			s.APIs[api.Name] = api
			ord.apis = append(ord.apis, api.Name)
		}
	}
	if e, ok := f["iam"]; ok {
		if s.IAM, err = d.iam(e.Val); err != nil {
			return nil, ord, err
		}
	}
	if e, ok := f["usagePlans"]; ok {
		path := []string{"usagePlans"}
		plans, err := d.Entries(path, e.Val)
		if err != nil {
			return nil, ord, err
		}
		for _, pe := range plans {
			p, err := d.usagePlan(yamldecode.Sub(path, pe.Key), pe)
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
	if e, ok := f["domains"]; ok {
		if s.Domains, err = d.domains(e.Val); err != nil {
			return nil, ord, err
		}
	}
	return s, ord, nil
}

func (d *decoder) iam(n ast.Node) (spec.IAM, error) {
	path := []string{"iam"}
	out := spec.IAM{Region: spec.DefaultRegion, AccountID: spec.DefaultAccountID}
	f, err := d.Fields(path, n, "region", "accountId", "accessKeys")
	if err != nil {
		return out, err
	}
	if e, ok := f["accountId"]; ok {
		if out.AccountID, err = d.Str(yamldecode.Sub(path, "accountId"), e.Val); err != nil {
			return out, err
		}
	}
	if e, ok := f["region"]; ok {
		if out.Region, err = d.Str(yamldecode.Sub(path, "region"), e.Val); err != nil {
			return out, err
		}
	}
	e, ok := f["accessKeys"]
	if !ok {
		return out, nil
	}
	keysPath := yamldecode.Sub(path, "accessKeys")
	items, err := d.List(keysPath, e.Val)
	if err != nil {
		return out, err
	}
	for i, item := range items {
		k, err := d.accessKey(yamldecode.Sub(keysPath, spec.Index(i)), item)
		if err != nil {
			return out, err
		}
		out.AccessKeys = append(out.AccessKeys, k)
	}
	return out, nil
}

func (d *decoder) accessKey(path []string, n ast.Node) (spec.AccessKey, error) {
	var k spec.AccessKey
	v, _, err := d.Resolve(path, n)
	if err != nil {
		return k, err
	}
	if _, ok := v.(*ast.MappingNode); !ok {
		// Not yamldecode.Describe(v): a string here may well be a secret.
		return k, d.Errorf(n, path, "want a mapping of id and secret (or secretFromEnv), got %s", yamldecode.Kind(v))
	}
	f, err := d.Fields(path, n, "id", "secret", "secretFromEnv")
	if err != nil {
		return k, err
	}
	if k.ID, err = d.RequiredStr(f, n, path, "id", "the access key ID, such as AKIAIOSFODNN7EXAMPLE"); err != nil {
		return k, err
	}
	se, hasSecret := f["secret"]
	ee, hasEnv := f["secretFromEnv"]
	switch {
	case hasSecret && hasEnv:
		return k, d.Errorf(ee.KeyAt, path, "give either secret or secretFromEnv, not both")
	case hasSecret:
		k.Secret, err = d.secret(yamldecode.Sub(path, "secret"), se.Val)
		return k, err
	case hasEnv:
		envPath := yamldecode.Sub(path, "secretFromEnv")
		name, err := d.Str(envPath, ee.Val)
		if err != nil {
			return k, err
		}
		if !spec.ValidEnvName(name) {
			return k, d.Errorf(ee.Val, envPath, "%s is not an environment variable name: want letters, digits and _, not starting with a digit", yamlnode.QuoteShort(name))
		}
		secret, _ := os.LookupEnv(name)
		if secret == "" {
			return k, d.Errorf(ee.Val, envPath, "the environment variable %s is not set or empty; set it to the secret access key", name)
		}
		if msg := spec.CheckSecret(secret); msg != "" {
			return k, d.Errorf(ee.Val, envPath, "the secret in the environment variable %s %s", name, msg)
		}
		k.Secret = secret
		return k, nil
	}
	return k, d.Errorf(n, path, "the access key has no secret: add secretFromEnv: VARIABLE (or secret: …)")
}

// secret decodes a secret access key as str does, without quoting the value in any message.
func (d *decoder) secret(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.Resolve(path, n)
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
		return "", d.Errorf(n, path, "want a string, got %s (quote it; the value is not shown)", yamldecode.Kind(v))
	}
	return "", d.Errorf(n, path, "want a string, got %s", yamldecode.Kind(v))
}

func (d *decoder) function(fe yamldecode.Entry) (spec.Function, error) {
	path := []string{"functions", fe.Key}
	fn := spec.Function{Name: fe.Key, FunctionSettings: spec.DefaultFunctionSettings()}
	fn.Line, fn.Column = yamlnode.Position(fe.KeyAt)
	f, err := d.Fields(path, fe.Val, "source", "runtime", "handler", "isolation", "memory", "timeout", "environment", "maxConcurrency", "minWarm", "idleTimeout", "snapStart", "allowedOutboundHosts", "async", "schedules", "events", "allowedPublishSubjects")
	if err != nil {
		return fn, err
	}
	for _, s := range []struct {
		key string
		to  *string
	}{{"runtime", &fn.Runtime}, {"handler", &fn.Handler}, {"isolation", &fn.Isolation}} {
		if e, ok := f[s.key]; ok {
			if *s.to, err = d.Str(yamldecode.Sub(path, s.key), e.Val); err != nil {
				return fn, err
			}
		}
	}
	se, err := d.Required(f, fe.KeyAt, path, "source", "the function's Go source directory or .wasm file")
	if err != nil {
		return fn, err
	}
	if err := d.source(&fn, yamldecode.Sub(path, "source"), se.Val); err != nil {
		return fn, err
	}
	if e, ok := f["memory"]; ok {
		if fn.MemoryMB, err = d.Integer(yamldecode.Sub(path, "memory"), e.Val, " of MB"); err != nil {
			return fn, err
		}
	}
	if e, ok := f["timeout"]; ok {
		if fn.Timeout, err = d.duration(yamldecode.Sub(path, "timeout"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["environment"]; ok {
		envPath := yamldecode.Sub(path, "environment")
		vars, err := d.Entries(envPath, e.Val)
		if err != nil {
			return fn, err
		}
		size := 0
		for _, v := range vars {
			val, err := d.Text(yamldecode.Sub(envPath, v.Key), v.Val)
			if err != nil {
				return fn, err
			}
			// Stop early on a huge environment (aliases can repeat one many times).
			if size += len(v.Key) + len(val); size > spec.MaxEnvironmentSize {
				return fn, d.Errorf(e.KeyAt, envPath, "%s", spec.EnvSizeMessage(size, true))
			}
			fn.Environment[v.Key] = val
		}
	}
	if e, ok := f["maxConcurrency"]; ok {
		if fn.MaxConcurrency, err = d.Integer(yamldecode.Sub(path, "maxConcurrency"), e.Val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["minWarm"]; ok {
		if fn.MinWarm, err = d.Integer(yamldecode.Sub(path, "minWarm"), e.Val, ""); err != nil {
			return fn, err
		}
	}
	if e, ok := f["idleTimeout"]; ok {
		if fn.IdleTimeout, err = d.duration(yamldecode.Sub(path, "idleTimeout"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["snapStart"]; ok {
		if fn.SnapStart, err = d.Bool(yamldecode.Sub(path, "snapStart"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["allowedOutboundHosts"]; ok {
		if fn.AllowedOutboundHosts, err = d.StrList(yamldecode.Sub(path, "allowedOutboundHosts"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["async"]; ok {
		if fn.Async, err = functions.DecodeAsyncSettings(d.Decoder, yamldecode.Sub(path, "async"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["allowedPublishSubjects"]; ok {
		if fn.AllowedPublishSubjects, err = d.StrList(yamldecode.Sub(path, "allowedPublishSubjects"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["schedules"]; ok {
		if fn.Schedules, err = d.schedules(yamldecode.Sub(path, "schedules"), e.Val); err != nil {
			return fn, err
		}
	}
	if e, ok := f["events"]; ok {
		if fn.Events, err = d.eventSources(yamldecode.Sub(path, "events"), e.Val); err != nil {
			return fn, err
		}
	}
	return fn, nil
}

// eventSources reads a function's `events:`: a list of mappings with a subject.
func (d *decoder) eventSources(path []string, n ast.Node) ([]spec.EventSource, error) {
	items, err := d.ListOf(path, n, "a list of event sources, such as [{subject: orders.created}]")
	if err != nil {
		return nil, err
	}
	out := make([]spec.EventSource, 0, len(items))
	for i, item := range items {
		p := yamldecode.Sub(path, spec.Index(i))
		f, err := d.Fields(p, item, "subject", "batchSize", "batchWindow", "startingPosition", "maxReceiveCount")
		if err != nil {
			return nil, err
		}
		subject, err := d.RequiredStr(f, item, p, "subject", "the subject whose messages the function receives, such as orders.created or orders.>")
		if err != nil {
			return nil, err
		}
		e := spec.DefaultEventSource(subject)
		for _, k := range []struct {
			key string
			to  *int
		}{{"batchSize", &e.BatchSize}, {"maxReceiveCount", &e.MaxReceiveCount}} {
			if v, ok := f[k.key]; ok {
				if *k.to, err = d.Integer(yamldecode.Sub(p, k.key), v.Val, ""); err != nil {
					return nil, err
				}
			}
		}
		if v, ok := f["batchWindow"]; ok {
			if e.BatchWindow, err = d.duration(yamldecode.Sub(p, "batchWindow"), v.Val); err != nil {
				return nil, err
			}
		}
		if v, ok := f["startingPosition"]; ok {
			if e.StartingPosition, err = d.Str(yamldecode.Sub(p, "startingPosition"), v.Val); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func isMapping(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// schedules reads a function's `schedules:`: a list of expressions, or of mappings with one.
func (d *decoder) schedules(path []string, n ast.Node) ([]spec.Schedule, error) {
	items, err := d.ListOf(path, n, "a list of schedule expressions, such as [rate(5 minutes)]")
	if err != nil {
		return nil, err
	}
	out := make([]spec.Schedule, 0, len(items))
	for i, item := range items {
		p := yamldecode.Sub(path, spec.Index(i))
		if v, _, err := d.Resolve(p, item); err == nil && v != nil && !isMapping(v) {
			s, err := d.Str(p, item)
			if err != nil {
				return nil, err
			}
			out = append(out, spec.Schedule{Expression: s})
			continue
		}
		f, err := d.Fields(p, item, "expression", "input", "timezone", "missed")
		if err != nil {
			return nil, err
		}
		var s spec.Schedule
		if s.Expression, err = d.RequiredStr(f, item, p, "expression", "the schedule, such as rate(5 minutes) or cron(0 12 * * ? *)"); err != nil {
			return nil, err
		}
		if e, ok := f["input"]; ok {
			if s.Input, err = d.JSON(yamldecode.Sub(p, "input"), e.Val); err != nil {
				return nil, err
			}
		}
		for _, k := range []struct {
			key string
			to  *string
		}{{"timezone", &s.TimeZone}, {"missed", &s.Missed}} {
			if e, ok := f[k.key]; ok {
				if *k.to, err = d.Str(yamldecode.Sub(p, k.key), e.Val); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// source resolves and stats a function's source and sets Source and Kind.
func (d *decoder) source(fn *spec.Function, path []string, n ast.Node) error {
	src, err := d.Str(path, n)
	if err != nil {
		return err
	}
	if strings.TrimSpace(src) == "" {
		return d.Errorf(n, path, "empty; want a Go source directory or a .wasm file")
	}
	if strings.ContainsRune(src, 0) {
		return d.Errorf(n, path, "contains a NUL byte")
	}
	abs := src
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.Dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return d.Errorf(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(src), abs)
	case err != nil:
		return d.Errorf(n, path, "cannot use %s: %v", yamlnode.QuoteShort(src), err)
	case info.IsDir():
		fn.Kind = spec.SourceGo
	case info.Mode().IsRegular() && strings.HasSuffix(abs, ".wasm"):
		fn.Kind = spec.SourceWasm
	case info.Mode().IsRegular() && strings.HasSuffix(abs, ".zip"):
		fn.Kind = spec.SourceZip
	default:
		return d.Errorf(n, path, "%s is neither a directory (Go source, or a process runtime's package), a .wasm file nor a .zip package", yamlnode.QuoteShort(src))
	}
	fn.Source = abs
	return nil
}

func (d *decoder) usagePlan(path []string, pe yamldecode.Entry) (spec.UsagePlan, error) {
	p := spec.UsagePlan{Name: pe.Key}
	f, err := d.Fields(path, pe.Val, "throttle", "quota")
	if err != nil {
		return p, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(yamldecode.Sub(path, "throttle"), e)
		if err != nil {
			return p, err
		}
		p.Throttle = &t
	}
	if e, ok := f["quota"]; ok {
		qPath := yamldecode.Sub(path, "quota")
		g, err := d.Fields(qPath, e.Val, "limit", "period")
		if err != nil {
			return p, err
		}
		q := spec.Quota{}
		le, err := d.Required(g, e.KeyAt, qPath, "limit", "the requests each key may make per period, %d to %d", spec.MinQuotaLimit, spec.MaxQuotaLimit)
		if err != nil {
			return p, err
		}
		if q.Limit, err = d.Integer(yamldecode.Sub(qPath, "limit"), le.Val, " of requests"); err != nil {
			return p, err
		}
		if q.Period, err = d.RequiredStr(g, e.KeyAt, qPath, "period", "%s, %s or %s", spec.QuotaPeriodDay, spec.QuotaPeriodWeek, spec.QuotaPeriodMonth); err != nil {
			return p, err
		}
		p.Quota = &q
	}
	return p, nil
}

// throttle decodes the throttle written as the value of te.
func (d *decoder) throttle(path []string, te yamldecode.Entry) (spec.Throttle, error) {
	var t spec.Throttle
	f, err := d.Fields(path, te.Val, "rate", "burst")
	if err != nil {
		return t, err
	}
	re, err := d.Required(f, te.KeyAt, path, "rate", "the steady rate in requests per second, more than 0 and at most %d", spec.MaxThrottleRate)
	if err != nil {
		return t, err
	}
	if t.Rate, err = d.Number(yamldecode.Sub(path, "rate"), re.Val, " of requests per second"); err != nil {
		return t, err
	}
	be, err := d.Required(f, te.KeyAt, path, "burst", "the most requests at once, 0 to %d", spec.MaxThrottleBurst)
	if err != nil {
		return t, err
	}
	if t.Burst, err = d.Integer(yamldecode.Sub(path, "burst"), be.Val, " of requests"); err != nil {
		return t, err
	}
	return t, nil
}

// domains decodes the stack's domains: and fills their defaults.
func (d *decoder) domains(n ast.Node) (map[string]spec.Domain, error) {
	path := []string{"domains"}
	es, err := d.Entries(path, n)
	if err != nil {
		return nil, err
	}
	out := map[string]spec.Domain{}
	for _, de := range es {
		p := yamldecode.Sub(path, de.Key)
		f, err := d.Fields(p, de.Val, keysOf(spec.Domain{})...)
		if err != nil {
			return nil, err
		}
		dom := spec.Domain{Name: de.Key, Certificate: spec.DomainCertificate{Source: spec.CertificateLocal}, SecurityPolicy: spec.TLSPolicy12}
		if ce, ok := f["certificate"]; ok {
			cp := yamldecode.Sub(p, "certificate")
			if v, _, err := d.Resolve(cp, ce.Val); err == nil {
				if _, isMap := v.(*ast.MappingNode); !isMap {
					if dom.Certificate.Source, err = d.Str(cp, ce.Val); err != nil {
						return nil, err
					}
					if dom.Certificate.Source == spec.CertificateFiles {
						return nil, d.Errorf(ce.Val, cp, "write {certFile: ./cert.pem, keyFile: ./key.pem} for a certificate of your own")
					}
				} else {
					g, err := d.Fields(cp, ce.Val, "certFile", "keyFile")
					if err != nil {
						return nil, err
					}
					dom.Certificate.Source = spec.CertificateFiles
					for key, to := range map[string]*string{"certFile": &dom.Certificate.CertFile, "keyFile": &dom.Certificate.KeyFile} {
						e, err := d.Required(g, ce.KeyAt, cp, key, "a PEM file, such as ./%s.pem", key)
						if err != nil {
							return nil, err
						}
						if *to, err = d.file(yamldecode.Sub(cp, key), e.Val, "a PEM file"); err != nil {
							return nil, err
						}
					}
				}
			}
		}
		if me, ok := f["mappings"]; ok {
			mp := yamldecode.Sub(p, "mappings")
			ms, err := d.Entries(mp, me.Val)
			if err != nil {
				return nil, err
			}
			dom.Mappings = map[string]spec.APIMapping{}
			for _, m := range ms {
				g, err := d.Fields(yamldecode.Sub(mp, m.Key), m.Val, "api", "stage")
				if err != nil {
					return nil, err
				}
				am := spec.APIMapping{Stage: spec.DefaultStage}
				if am.API, err = d.RequiredStr(g, m.KeyAt, yamldecode.Sub(mp, m.Key), "api", "the name of an API of this stack"); err != nil {
					return nil, err
				}
				if se, ok := g["stage"]; ok {
					if am.Stage, err = d.Str(yamldecode.Sub(mp, m.Key, "stage"), se.Val); err != nil {
						return nil, err
					}
				}
				dom.Mappings[m.Key] = am
			}
		} else {
			return nil, d.Errorf(de.KeyAt, yamldecode.Sub(p, "mappings"), "required: the APIs this domain serves by base path, such as {\"\": {api: shop, stage: prod}}")
		}
		if te, ok := f["mutualTls"]; ok {
			tp := yamldecode.Sub(p, "mutualTls")
			g, err := d.Fields(tp, te.Val, "truststore", "revokedSerials")
			if err != nil {
				return nil, err
			}
			dom.MutualTLS = &spec.MutualTLS{}
			e, err := d.Required(g, te.KeyAt, tp, "truststore", "a PEM file of the certificate authorities client certificates must chain to")
			if err != nil {
				return nil, err
			}
			if dom.MutualTLS.Truststore, err = d.file(yamldecode.Sub(tp, "truststore"), e.Val, "a PEM file of certificate authorities"); err != nil {
				return nil, err
			}
			if re, ok := g["revokedSerials"]; ok {
				if dom.MutualTLS.RevokedSerials, err = d.StrList(yamldecode.Sub(tp, "revokedSerials"), re.Val); err != nil {
					return nil, err
				}
			}
		}
		if he, ok := f["hsts"]; ok {
			hp := yamldecode.Sub(p, "hsts")
			g, err := d.Fields(hp, he.Val, keysOf(spec.HSTS{})...)
			if err != nil {
				return nil, err
			}
			dom.HSTS = &spec.HSTS{MaxAge: spec.Duration(spec.DefaultHSTSMaxAge)}
			if err := d.decodeRest(hp, g, dom.HSTS); err != nil {
				return nil, err
			}
		}
		if err := d.decodeRest(p, f, &dom, "certificate", "mappings", "mutualTls", "hsts"); err != nil {
			return nil, err
		}
		out[de.Key] = dom
	}
	return out, nil
}
