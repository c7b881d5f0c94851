package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/spec"
)

// publishVersion answers PublishVersion. Every deploy makes a version in Gatehouse, so $LATEST is
// always published already: the answer is the newest version, as Lambda's is when $LATEST has not
// changed since it was published.
func (s *Server) publishVersion(w http.ResponseWriter, req *request, escaped string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	var in struct{ CodeSha256, Description string }
	if len(req.body) > 0 {
		if err := json.Unmarshal(req.body, &in); err != nil {
			return errBadRequest("the request is not PublishVersion's JSON: " + err.Error())
		}
	}
	v, err := s.latest(req.r.Context(), name)
	if err != nil {
		return err
	}
	c := s.configuration(v, strconv.Itoa(v.Version))
	if in.CodeSha256 != "" && in.CodeSha256 != c.CodeSha256 {
		return &awsError{Status: http.StatusPreconditionFailed, Code: "PreconditionFailedException",
			Message: fmt.Sprintf("CodeSha256 (%s) is different from current CodeSha256 in $LATEST (%s). Please try again with the CodeSha256 in $LATEST.", in.CodeSha256, c.CodeSha256)}
	}
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) listVersions(w http.ResponseWriter, req *request, escaped string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	latest, err := s.latest(ctx, name)
	if err != nil {
		return err
	}
	vs, err := s.cfg.Registry.Versions(ctx, name)
	if err != nil {
		return err
	}
	out := []functionConfiguration{s.configuration(latest, "$LATEST")}
	for _, v := range vs {
		out = append(out, s.configuration(v, strconv.Itoa(v.Version)))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"Versions": out})
}

// updateFunctionConfiguration makes a version with the same code and the configuration changed.
func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, req *request, escaped string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	var in struct {
		Runtime, Handler, Description *string
		Timeout, MemorySize           *int
		Environment                   *struct{ Variables map[string]string }
		SnapStart                     *snapStartInput
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest("the request is not UpdateFunctionConfiguration's JSON: " + err.Error())
	}
	var snapStart bool
	if in.SnapStart != nil {
		if snapStart, err = in.SnapStart.on(); err != nil {
			return err
		}
	}
	ctx := req.r.Context()
	cur, m, err := s.latestManifest(ctx, name)
	if err != nil {
		return err
	}
	if in.Runtime != nil {
		wasNative := m.Runtime == "" || m.Runtime == spec.RuntimeWasm
		isNative := *in.Runtime == "" || *in.Runtime == spec.RuntimeWasm
		if wasNative != isNative {
			return errBadRequest("a function's code is a WebAssembly module or a package: change Runtime between those with UpdateFunctionCode's code, not here")
		}
		if !isNative {
			m.Runtime = *in.Runtime
		}
	}
	if in.Handler != nil {
		m.Handler = *in.Handler
	}
	if in.MemorySize != nil {
		m.MemoryMB = *in.MemorySize
	}
	if in.Timeout != nil {
		m.Timeout = spec.Duration(time.Duration(*in.Timeout) * time.Second)
	}
	if in.Environment != nil {
		m.Environment = in.Environment.Variables
		if m.Environment == nil {
			m.Environment = map[string]string{}
		}
		m.Secrets = nil // the caller gave every variable
	}
	if in.SnapStart != nil {
		m.SnapStart = snapStart
	}
	description := cur.Description
	if in.Description != nil {
		description = *in.Description
	}
	v, err := s.republish(ctx, req, cur, m, description)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.configuration(v, "$LATEST"))
}

// aliasConfiguration is Lambda's AliasConfiguration.
type aliasConfiguration struct {
	AliasArn        string
	Name            string
	FunctionVersion string
	Description     string
	RoutingConfig   *routingConfig `json:",omitempty"`
	RevisionId      string
}

type routingConfig struct {
	AdditionalVersionWeights map[string]float64
}

func (s *Server) aliasView(a functions.AliasRecord) aliasConfiguration {
	c := aliasConfiguration{AliasArn: s.functionARN(a.Function) + ":" + a.Name, Name: a.Name,
		FunctionVersion: versionLabel(a.Version), Description: a.Description, RevisionId: strconv.FormatUint(a.Revision, 10)}
	if a.AdditionalVersion != 0 {
		c.RoutingConfig = &routingConfig{AdditionalVersionWeights: map[string]float64{strconv.Itoa(a.AdditionalVersion): a.AdditionalWeight}}
	}
	return c
}

func versionLabel(n int) string {
	if n == 0 {
		return "$LATEST"
	}
	return strconv.Itoa(n)
}

// aliasInput is CreateAlias's and UpdateAlias's request.
type aliasInput struct {
	Name            string
	FunctionVersion *string
	Description     *string
	RoutingConfig   *routingConfig
}

// applyAlias sets a's fields from in, checked.
func applyAlias(a *functions.AliasRecord, in aliasInput) error {
	if in.FunctionVersion != nil {
		switch fv := *in.FunctionVersion; {
		case fv == "$LATEST":
			a.Version = 0
		default:
			n, err := strconv.Atoi(fv)
			if err != nil || n < 1 {
				return errBadRequest(fmt.Sprintf("FunctionVersion %q: want a version number or $LATEST", fv))
			}
			a.Version = n
		}
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if in.RoutingConfig != nil {
		a.AdditionalVersion, a.AdditionalWeight = 0, 0
		if len(in.RoutingConfig.AdditionalVersionWeights) > 1 {
			return errBadRequest("RoutingConfig: at most one additional version")
		}
		for k, w := range in.RoutingConfig.AdditionalVersionWeights {
			n, err := strconv.Atoi(k)
			if err != nil || n < 1 {
				return errBadRequest(fmt.Sprintf("RoutingConfig: %q is not a version number", k))
			}
			if w < 0 || w > 1 {
				return errBadRequest(fmt.Sprintf("RoutingConfig: the weight of version %d must be 0 to 1", n))
			}
			a.AdditionalVersion, a.AdditionalWeight = n, w
		}
	}
	return nil
}

func (s *Server) aliases(w http.ResponseWriter, req *request, escaped, alias string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	if _, err := s.latest(ctx, name); err != nil {
		return err
	}
	r := req.r
	switch {
	case alias == "" && r.Method == http.MethodGet:
		list, err := s.cfg.Registry.Aliases(ctx, name)
		if err != nil {
			return err
		}
		out := []aliasConfiguration{}
		for _, a := range list {
			out = append(out, s.aliasView(a))
		}
		return writeJSON(w, http.StatusOK, map[string]any{"Aliases": out})
	case alias == "" && r.Method == http.MethodPost:
		var in aliasInput
		if err := json.Unmarshal(req.body, &in); err != nil {
			return errBadRequest("the request is not CreateAlias's JSON: " + err.Error())
		}
		if in.FunctionVersion == nil {
			return errBadRequest("FunctionVersion is required")
		}
		if _, err := s.cfg.Registry.Alias(ctx, name, in.Name); err == nil {
			return &awsError{Status: http.StatusConflict, Code: "ResourceConflictException",
				Message: fmt.Sprintf("Alias already exists: %s:%s", s.functionARN(name), in.Name)}
		}
		a := functions.AliasRecord{Function: name, Name: in.Name}
		if err := applyAlias(&a, in); err != nil {
			return err
		}
		return s.setAlias(w, req, a, http.StatusCreated)
	}
	a, err := s.cfg.Registry.Alias(ctx, name, alias)
	if errors.Is(err, functions.ErrNotFound) {
		return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException",
			Message: fmt.Sprintf("Alias not found: %s:%s", s.functionARN(name), alias)}
	}
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		return writeJSON(w, http.StatusOK, s.aliasView(a))
	case http.MethodPut:
		var in aliasInput
		if err := json.Unmarshal(req.body, &in); err != nil {
			return errBadRequest("the request is not UpdateAlias's JSON: " + err.Error())
		}
		if err := applyAlias(&a, in); err != nil {
			return err
		}
		return s.setAlias(w, req, a, http.StatusOK)
	case http.MethodDelete:
		if err := s.cfg.Registry.DeleteAlias(ctx, name, alias); err != nil {
			return err
		}
		if s.cfg.Applied != nil {
			if err := s.cfg.Applied(ctx, func(snap *functions.Snapshot) bool {
				_, ok := snap.Alias(name, alias)
				return !ok
			}); err != nil {
				return err
			}
		}
		s.audit(ctx, req, adminapi.ActionAliasDelete, name+":"+alias, "")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return unknownOperation("lambda", r)
}

// setAlias stores a and waits until the node serves it.
func (s *Server) setAlias(w http.ResponseWriter, req *request, a functions.AliasRecord, status int) error {
	ctx := req.r.Context()
	for _, n := range []int{a.Version, a.AdditionalVersion} {
		if n == 0 {
			continue
		}
		if _, err := s.cfg.Registry.Version(ctx, a.Function, n); errors.Is(err, functions.ErrNotFound) {
			return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException",
				Message: fmt.Sprintf("Function not found: %s:%d", s.functionARN(a.Function), n)}
		}
	}
	a.Revision = 0
	set, err := s.cfg.Registry.SetAlias(ctx, a)
	if err != nil {
		return err
	}
	if s.cfg.Applied != nil {
		if err := s.cfg.Applied(ctx, functions.AliasApplied(set)); err != nil {
			return err
		}
	}
	detail := "version " + versionLabel(set.Version)
	if set.AdditionalVersion != 0 {
		detail += fmt.Sprintf(", %g to version %d", set.AdditionalWeight, set.AdditionalVersion)
	}
	s.audit(ctx, req, adminapi.ActionAliasSet, set.Function+":"+set.Name, detail)
	return writeJSON(w, status, s.aliasView(set))
}

// splitAliasPath splits "aliases" or "aliases/NAME".
func splitAliasPath(sub string) (alias string, ok bool) {
	if sub == "aliases" {
		return "", true
	}
	alias, ok = strings.CutPrefix(sub, "aliases/")
	return alias, ok && alias != "" && !strings.Contains(alias, "/")
}

// concurrency serves PutFunctionConcurrency, GetFunctionConcurrency and DeleteFunctionConcurrency
// (path 2017-10-31/functions/NAME/concurrency and 2019-09-30/functions/NAME/concurrency): a
// function's reserved concurrency is its maxConcurrency. Setting it makes a version with the same
// code and the new limit, as any configuration change does here.
func (s *Server) concurrency(w http.ResponseWriter, req *request, escaped string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	cur, m, err := s.latestManifest(ctx, name)
	if err != nil {
		return err
	}
	limit := -1 // -1: delete
	switch req.r.Method {
	case http.MethodGet:
		out := map[string]any{}
		if cur.Manifest.MaxConcurrency > 0 {
			out["ReservedConcurrentExecutions"] = cur.Manifest.MaxConcurrency
		}
		return writeJSON(w, http.StatusOK, out)
	case http.MethodPut:
		var in struct{ ReservedConcurrentExecutions *int }
		if err := json.Unmarshal(req.body, &in); err != nil || in.ReservedConcurrentExecutions == nil {
			return errBadRequest("ReservedConcurrentExecutions is required")
		}
		if *in.ReservedConcurrentExecutions < 1 {
			// Lambda's 0 stops the function; Gatehouse's 0 means no limit, so 0 is refused rather than
			// silently meaning the opposite.
			return errBadRequest("ReservedConcurrentExecutions must be at least 1 here: 0 would mean no limit in Gatehouse (use DeleteFunctionConcurrency for that)")
		}
		limit = *in.ReservedConcurrentExecutions
	case http.MethodDelete:
	default:
		return unknownOperation("lambda", req.r)
	}
	m.MaxConcurrency = max(limit, 0)
	if _, err := s.republish(ctx, req, cur, m, cur.Description); err != nil {
		return err
	}
	if limit < 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, http.StatusOK, map[string]int{"ReservedConcurrentExecutions": limit})
}

// latestManifest is the function's newest version and its manifest, secrets included: what a
// configuration change starts from.
func (s *Server) latestManifest(ctx context.Context, name string) (functions.VersionRecord, functions.Manifest, error) {
	cur, err := s.latest(ctx, name)
	if err != nil {
		return cur, functions.Manifest{}, err
	}
	secrets, err := s.cfg.Registry.OpenSecrets(cur)
	if err != nil {
		return cur, functions.Manifest{}, err
	}
	m, err := cur.Manifest.Manifest(secrets)
	if err != nil {
		return cur, functions.Manifest{}, err
	}
	return cur, *m, nil
}

// republish publishes m with cur's code: a configuration change.
func (s *Server) republish(ctx context.Context, req *request, cur functions.VersionRecord, m functions.Manifest, description string) (functions.VersionRecord, error) {
	module, err := s.cfg.Registry.Module(ctx, cur.ModuleSHA256)
	if err != nil {
		return functions.VersionRecord{}, err
	}
	return s.publish(ctx, req, m, module, description)
}
