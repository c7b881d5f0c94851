package awsapi

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/async"
	"gatehouse.dev/gatehouse/internal/bus"
	"gatehouse.dev/gatehouse/internal/spec"
)

// lambdaPrefix is the Lambda API's version path.
const lambdaPrefix = "/2015-03-31/functions"

// lambda serves the Lambda API's operations.
func (s *Server) lambda(w http.ResponseWriter, req *request) {
	r := req.r
	path := r.URL.EscapedPath()
	// The concurrency operations live under other API versions' paths.
	for _, prefix := range []string{"/2017-10-31/functions/", "/2019-09-30/functions/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			if name, ok := strings.CutSuffix(rest, "/concurrency"); ok && !strings.Contains(name, "/") {
				if err := s.concurrency(w, req, name); err != nil {
					s.lambdaError(w, err)
				}
				return
			}
		}
	}
	if rest, ok := strings.CutPrefix(path, "/2019-09-25/functions/"); ok {
		if name, ok := strings.CutSuffix(rest, "/event-invoke-config"); ok && !strings.Contains(name, "/") {
			if err := s.eventInvokeConfig(w, req, name); err != nil {
				s.lambdaError(w, err)
			}
			return
		}
	}
	rest, ok := strings.CutPrefix(path, lambdaPrefix)
	if !ok {
		s.lambdaError(w, unknownOperation("lambda", r))
		return
	}
	rest = strings.TrimPrefix(rest, "/")
	var err error
	switch name, sub, _ := strings.Cut(rest, "/"); {
	case name == "" && r.Method == http.MethodPost:
		err = s.createFunction(w, req)
	case name == "" && r.Method == http.MethodGet:
		err = s.listFunctions(w, req)
	case sub == "" && r.Method == http.MethodGet:
		err = s.getFunction(w, req, name, true)
	case sub == "configuration" && r.Method == http.MethodGet:
		err = s.getFunction(w, req, name, false)
	case sub == "" && r.Method == http.MethodDelete:
		err = s.deleteFunction(w, req, name)
	case sub == "code" && r.Method == http.MethodPut:
		err = s.updateFunctionCode(w, req, name)
	case sub == "invocations" && r.Method == http.MethodPost:
		err = s.invoke(w, req, name)
	case sub == "configuration" && r.Method == http.MethodPut:
		err = s.updateFunctionConfiguration(w, req, name)
	case sub == "versions" && r.Method == http.MethodPost:
		err = s.publishVersion(w, req, name)
	case sub == "versions" && r.Method == http.MethodGet:
		err = s.listVersions(w, req, name)
	case strings.HasPrefix(sub, "policy"):
		if sid, ok := splitPolicyPath(sub); ok {
			err = s.policy(w, req, name, sid)
		} else {
			err = unknownOperation("lambda", r)
		}
	case strings.HasPrefix(sub, "aliases"):
		if alias, ok := splitAliasPath(sub); ok {
			err = s.aliases(w, req, name, alias)
		} else {
			err = unknownOperation("lambda", r)
		}
	default:
		err = unknownOperation("lambda", r)
	}
	if err != nil {
		s.lambdaError(w, err)
	}
}

func unknownOperation(service string, r *http.Request) *awsError {
	return &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
		Message: fmt.Sprintf("%s %s %s is not an operation this Gatehouse serves (see docs/aws.md)", service, r.Method, r.URL.Path)}
}

// lambdaError writes err as the Lambda API does: an *awsError as it is, the registry's errors as
// their exceptions, anything else as a ServiceException.
func (s *Server) lambdaError(w http.ResponseWriter, err error) {
	var ae *awsError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, functions.ErrNotFound):
		ae = &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: err.Error()}
	case errors.Is(err, functions.ErrInvalid):
		ae = errBadRequest(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		ae = &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceException", Message: "the node did not finish in time: " + err.Error()}
	default:
		s.log.Error("aws api: lambda call failed", "err", err)
		ae = &awsError{Status: http.StatusInternalServerError, Code: "ServiceException", Message: err.Error()}
	}
	restJSON{}.writeError(w, ae)
}

// requestFunction is the function the request's path names, and its qualifier: the path's, or
// the ?Qualifier parameter, which wins.
func requestFunction(req *request, escaped string) (name, qualifier string, err error) {
	name, qualifier, err = functionName(escaped)
	if q := req.r.URL.Query().Get("Qualifier"); q != "" && err == nil {
		qualifier = q
	}
	return name, qualifier, err
}

// functionName takes a function's name from the path: a name, or an ARN (full or partial, as Lambda
// takes them), and a qualifier after a colon.
func functionName(escaped string) (name, qualifier string, err error) {
	s, err := url.PathUnescape(escaped)
	if err != nil {
		return "", "", errBadRequest("the function name is not a valid path segment")
	}
	if rest, ok := strings.CutPrefix(s, "arn:"); ok {
		parts := strings.Split(rest, ":")
		// aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
		if len(parts) < 6 || parts[4] != "function" {
			return "", "", errBadRequest(fmt.Sprintf("%q is not a function ARN", s))
		}
		s = strings.Join(parts[5:], ":")
	} else if i := strings.Index(s, ":function:"); i >= 0 { // ACCOUNT:function:NAME
		s = s[i+len(":function:"):]
	}
	name, qualifier, _ = strings.Cut(s, ":")
	if name == "" {
		return "", "", errBadRequest("no function name")
	}
	return name, qualifier, nil
}

func (s *Server) functionARN(name string) string {
	return spec.FunctionARN(s.cfg.Region, s.cfg.AccountID, name)
}

func notFound(arn string) *awsError {
	return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: "Function not found: " + arn}
}

// createFunctionInput is CreateFunction's request, the parts Gatehouse takes.
type createFunctionInput struct {
	FunctionName string
	Runtime      string
	Role         string
	Handler      string
	Description  string
	Timeout      int
	MemorySize   int
	Publish      bool
	PackageType  string
	Code         struct {
		ZipFile         []byte // base64 in the JSON
		S3Bucket, S3Key string
		ImageUri        string
	}
	Environment *struct{ Variables map[string]string }
	SnapStart   *snapStartInput
}

// snapStartInput is a request's SnapStart: ApplyOn PublishedVersions (every version Gatehouse makes
// is a published one) or None.
type snapStartInput struct{ ApplyOn string }

// on is whether the request turns SnapStart on.
func (in *snapStartInput) on() (bool, error) {
	switch in.ApplyOn {
	case "PublishedVersions":
		return true, nil
	case "None":
		return false, nil
	}
	return false, errBadRequest(fmt.Sprintf("SnapStart.ApplyOn %q: want PublishedVersions or None", in.ApplyOn))
}

func (s *Server) createFunction(w http.ResponseWriter, req *request) error {
	var in createFunctionInput
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest("the request is not CreateFunction's JSON: " + err.Error())
	}
	name, _, err := functionName(url.PathEscape(in.FunctionName))
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	if _, err := s.cfg.Registry.Get(ctx, name); err == nil {
		return &awsError{Status: http.StatusConflict, Code: "ResourceConflictException", Message: "Function already exist: " + name}
	}
	if in.Code.S3Bucket != "" || in.Code.ImageUri != "" || in.PackageType == "Image" {
		return errBadRequest("this Gatehouse takes a function's code as Code.ZipFile (aws lambda create-function --zip-file fileb://function.zip); S3 locations and container images are not served")
	}
	m := functions.NewManifest(name)
	m.Runtime, m.Handler = in.Runtime, in.Handler
	if in.MemorySize > 0 {
		m.MemoryMB = in.MemorySize
	}
	if in.Timeout > 0 {
		m.Timeout = spec.Duration(time.Duration(in.Timeout) * time.Second)
	}
	if in.Environment != nil && in.Environment.Variables != nil {
		m.Environment = in.Environment.Variables
	}
	if in.SnapStart != nil {
		if m.SnapStart, err = in.SnapStart.on(); err != nil {
			return err
		}
	}
	v, err := s.deploy(ctx, req, m, in.Code.ZipFile, in.Description)
	if err != nil {
		return err
	}
	out := s.configuration(v, "$LATEST")
	if in.Publish {
		out.Version = strconv.Itoa(v.Version)
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) updateFunctionCode(w http.ResponseWriter, req *request, escaped string) error {
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	var in struct {
		ZipFile []byte
		Publish bool
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest("the request is not UpdateFunctionCode's JSON: " + err.Error())
	}
	ctx := req.r.Context()
	cur, m, err := s.latestManifest(ctx, name)
	if err != nil {
		return err
	}
	v, err := s.deploy(ctx, req, m, in.ZipFile, cur.Description)
	if err != nil {
		return err
	}
	out := s.configuration(v, "$LATEST")
	if in.Publish {
		out.Version = strconv.Itoa(v.Version)
	}
	return writeJSON(w, http.StatusOK, out)
}

// deploy publishes m with the zip's code: the zip itself for a process runtime, its .wasm module for
// a WebAssembly function.
func (s *Server) deploy(ctx context.Context, req *request, m functions.Manifest, zipFile []byte, description string) (functions.VersionRecord, error) {
	if len(zipFile) == 0 {
		return functions.VersionRecord{}, errBadRequest("no code: give Code.ZipFile, a .zip of the function's package")
	}
	module := zipFile
	switch {
	case spec.IsProcessRuntime(m.Runtime):
		m.Module = functions.DefaultPackageFile
	case m.Runtime == "" || m.Runtime == spec.RuntimeWasm:
		wasm, err := wasmFromZip(zipFile)
		if err != nil {
			return functions.VersionRecord{}, err
		}
		m.Runtime, m.Module, module = "", functions.DefaultModuleFile, wasm
	default:
		return functions.VersionRecord{}, errBadRequest(fmt.Sprintf("The runtime parameter of %s is not supported by this Gatehouse: use %s, or wasm for a WebAssembly module", m.Runtime, strings.Join(spec.ProcessRuntimes(), ", ")))
	}
	return s.publish(ctx, req, m, module, description)
}

// publish makes a bundle of m and module, checks it, publishes it and waits until the workers have
// loaded it.
func (s *Server) publish(ctx context.Context, req *request, m functions.Manifest, module []byte, description string) (functions.VersionRecord, error) {
	var buf bytes.Buffer
	if err := functions.WriteBundle(&buf, m, module); err != nil {
		return functions.VersionRecord{}, errBadRequest(err.Error())
	}
	b, err := functions.ReadBundle(bytes.NewReader(buf.Bytes()), int64(buf.Len()), functions.BundleLimits{})
	if err != nil {
		return functions.VersionRecord{}, errBadRequest(err.Error())
	}
	if s.cfg.Check != nil {
		if err := s.cfg.Check(ctx, b); err != nil {
			return functions.VersionRecord{}, errBadRequest(fmt.Sprintf("the code of %s cannot be run: %v", m.Name, err))
		}
	}
	by, from := "aws:"+req.keyID, remoteIP(req.r)
	v, created, err := s.cfg.Registry.Publish(ctx, b, functions.PublishOptions{Description: description, By: by, From: from})
	if err != nil {
		return functions.VersionRecord{}, err
	}
	if s.cfg.Activate != nil {
		if err := s.cfg.Activate(ctx, v); err != nil {
			return functions.VersionRecord{}, &awsError{Status: http.StatusInternalServerError, Code: "ServiceException",
				Message: fmt.Sprintf("version %d of %s is stored but not yet loaded by the workers (%v): send the same code again to retry", v.Version, m.Name, err)}
		}
	}
	detail := "sha256 " + v.ModuleSHA256 + ", unchanged"
	if created {
		detail = "sha256 " + v.ModuleSHA256 + ", created"
	}
	s.audit(ctx, req, adminapi.ActionFunctionDeploy, m.Name+":"+strconv.Itoa(v.Version), detail)
	s.log.Info("function deployed through the AWS API", "function", m.Name, "version", v.Version, "created", created, "key", req.keyID, "from", from)
	return v, nil
}

// wasmFromZip is the one .wasm module of a zip.
func wasmFromZip(data []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, errBadRequest("Code.ZipFile is not a zip file: " + err.Error())
	}
	var found *zip.File
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".wasm") {
			if found != nil {
				return nil, errBadRequest("the zip holds more than one .wasm module: give one")
			}
			found = f
		}
	}
	if found == nil {
		return nil, errBadRequest("a wasm function's zip must hold its .wasm module; for Python, Node.js or a bootstrap, set Runtime")
	}
	if found.UncompressedSize64 > functions.DefaultMaxModuleBytes {
		return nil, errBadRequest(fmt.Sprintf("%s is over the module limit of %s", found.Name, functions.FormatBytes(functions.DefaultMaxModuleBytes)))
	}
	rc, err := found.Open()
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(rc); err != nil {
		return nil, errBadRequest("reading " + found.Name + ": " + err.Error())
	}
	return out.Bytes(), nil
}

// latest is the function's newest version, or ResourceNotFoundException.
func (s *Server) latest(ctx context.Context, name string) (functions.VersionRecord, error) {
	f, err := s.cfg.Registry.Get(ctx, name)
	if errors.Is(err, functions.ErrNotFound) {
		return functions.VersionRecord{}, notFound(s.functionARN(name))
	}
	if err != nil {
		return functions.VersionRecord{}, err
	}
	return s.cfg.Registry.Version(ctx, name, f.LatestVersion)
}

// version is the version a qualifier names: "" and $LATEST the newest, a number, or an alias.
func (s *Server) version(ctx context.Context, name, qualifier string) (functions.VersionRecord, error) {
	switch {
	case qualifier == "" || qualifier == "$LATEST":
		return s.latest(ctx, name)
	case strings.Trim(qualifier, "0123456789") == "":
		n, _ := strconv.Atoi(qualifier)
		v, err := s.cfg.Registry.Version(ctx, name, n)
		if errors.Is(err, functions.ErrNotFound) {
			return v, notFound(s.functionARN(name) + ":" + qualifier)
		}
		return v, err
	}
	a, err := s.cfg.Registry.Alias(ctx, name, qualifier)
	if errors.Is(err, functions.ErrNotFound) {
		return functions.VersionRecord{}, notFound(s.functionARN(name) + ":" + qualifier)
	}
	if err != nil {
		return functions.VersionRecord{}, err
	}
	return s.cfg.Registry.Version(ctx, name, a.Version)
}

func (s *Server) getFunction(w http.ResponseWriter, req *request, escaped string, withCode bool) error {
	name, qualifier, err := requestFunction(req, escaped)
	if err != nil {
		return err
	}
	v, err := s.version(req.r.Context(), name, qualifier)
	if err != nil {
		return err
	}
	label := "$LATEST"
	if qualifier != "" && qualifier != "$LATEST" {
		label = strconv.Itoa(v.Version)
	}
	cfg := s.configuration(v, label)
	if !withCode {
		return writeJSON(w, http.StatusOK, cfg)
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"Configuration": cfg,
		// The code is not downloadable from here: Lambda answers with a presigned S3 URL.
		"Code": map[string]string{"RepositoryType": "S3", "Location": ""},
	})
}

func (s *Server) listFunctions(w http.ResponseWriter, req *request) error {
	ctx := req.r.Context()
	list, err := s.cfg.Registry.List(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(list, func(a, b functions.FunctionRecord) int { return strings.Compare(a.Name, b.Name) })
	q := req.r.URL.Query()
	maxItems := 50
	if m := q.Get("MaxItems"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > 10000 {
			return errBadRequest("MaxItems must be 1 to 10000")
		}
		maxItems = n
	}
	marker := q.Get("Marker")
	out := []functionConfiguration{}
	next := ""
	for _, f := range list {
		if marker != "" && f.Name <= marker {
			continue
		}
		if len(out) == maxItems {
			next = out[len(out)-1].FunctionName
			break
		}
		v, err := s.cfg.Registry.Version(ctx, f.Name, f.LatestVersion)
		if errors.Is(err, functions.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out = append(out, s.configuration(v, "$LATEST"))
	}
	body := map[string]any{"Functions": out}
	if next != "" {
		body["NextMarker"] = next
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) deleteFunction(w http.ResponseWriter, req *request, escaped string) error {
	name, qualifier, err := requestFunction(req, escaped)
	if err != nil {
		return err
	}
	if qualifier != "" && qualifier != "$LATEST" {
		return errBadRequest("deleting one version of a function is not served: delete the function")
	}
	ctx := req.r.Context()
	f, err := s.cfg.Registry.Get(ctx, name)
	if errors.Is(err, functions.ErrNotFound) {
		return notFound(s.functionARN(name))
	}
	if err != nil {
		return err
	}
	if err := s.cfg.Registry.Delete(ctx, name); err != nil {
		return err
	}
	if s.cfg.Applied != nil {
		if err := s.cfg.Applied(ctx, func(snap *functions.Snapshot) bool {
			got, ok := snap.Function(name)
			return !ok || got.ID != f.ID
		}); err != nil {
			return err
		}
	}
	s.dropPolicy(ctx, name)
	s.audit(ctx, req, adminapi.ActionFunctionDelete, name, "")
	s.log.Info("function deleted through the AWS API", "function", name, "key", req.keyID, "from", remoteIP(req.r))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// MaxInvokePayload is Lambda's limit on a synchronous invocation's payload: 6 MB.
const MaxInvokePayload = 6 << 20

func (s *Server) invoke(w http.ResponseWriter, req *request, escaped string) error {
	name, qualifier, err := requestFunction(req, escaped)
	if err != nil {
		return err
	}
	if len(req.body) > MaxInvokePayload {
		return &awsError{Status: http.StatusRequestEntityTooLarge, Code: "RequestTooLargeException",
			Message: fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxInvokePayload)}
	}
	ctx := req.r.Context()
	switch t := req.r.Header.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		if _, err := s.version(ctx, name, qualifier); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case "Event":
		return s.invokeAsync(w, req, name, qualifier)
	default:
		return errBadRequest(fmt.Sprintf("InvocationType %q: want RequestResponse, Event or DryRun", t))
	}
	if s.cfg.Invoke == nil {
		return &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceException", Message: "invocations are not available on this node"}
	}
	if qualifier == "$LATEST" {
		qualifier = ""
	}
	requestID := newRequestID()
	if s.cfg.NewRequestID != nil {
		requestID = s.cfg.NewRequestID()
	}
	start := time.Now()
	out, version, err := s.cfg.Invoke(ctx, name, qualifier, req.body, requestID)
	took := time.Since(start)
	if errors.Is(err, functions.ErrNotFound) {
		arn := s.functionARN(name)
		if qualifier != "" {
			arn += ":" + qualifier
		}
		return notFound(arn)
	}
	if version > 0 {
		w.Header().Set("X-Amz-Executed-Version", strconv.Itoa(version))
	}
	if req.r.Header.Get("X-Amz-Log-Type") == "Tail" && (err == nil || errors.Is(err, bus.ErrFunctionError) || errors.Is(err, bus.ErrFunctionTimeout)) {
		w.Header().Set("X-Amz-Log-Result", s.logTail(ctx, name, requestID, version, took))
	}
	var fe bus.FunctionFailure
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return nil
	case errors.Is(err, bus.ErrFunctionError):
		fe = bus.FailureOf(err, bus.FunctionFailure{ErrorType: "FunctionError", ErrorMessage: "the function failed"})
	case errors.Is(err, bus.ErrFunctionTimeout):
		fe = bus.FailureOf(err, bus.FunctionFailure{ErrorType: "Sandbox.Timedout", ErrorMessage: "Task timed out"})
	case errors.Is(err, bus.ErrResponseTooLarge):
		fe = bus.FailureOf(err, bus.FunctionFailure{ErrorType: "ResponseTooLarge", ErrorMessage: "the function's response is over the limit of 6 MiB"})
	case errors.Is(err, bus.ErrThrottled):
		return &awsError{Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Message: "Rate Exceeded: " + name + " is at its maxConcurrency"}
	case errors.Is(err, bus.ErrOverloaded), errors.Is(err, bus.ErrNoWorkers):
		return &awsError{Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Message: "the workers are out of capacity: try again shortly"}
	default:
		return err
	}
	w.Header().Set("X-Amz-Function-Error", "Unhandled")
	return writeJSON(w, http.StatusOK, fe)
}

// invokeAsync queues an asynchronous invocation and answers 202 once it is stored: it runs at least
// once, retried and sent to destinations by the function's async settings.
func (s *Server) invokeAsync(w http.ResponseWriter, req *request, name, qualifier string) error {
	ctx := req.r.Context()
	if len(req.body) > spec.MaxAsyncPayload {
		return &awsError{Status: http.StatusRequestEntityTooLarge, Code: "RequestTooLargeException",
			Message: fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation with InvocationType Event", spec.MaxAsyncPayload)}
	}
	if s.cfg.Enqueue == nil {
		return &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceException", Message: "asynchronous invocations are not available on this node"}
	}
	if qualifier == "$LATEST" {
		qualifier = ""
	}
	requestID := newRequestID()
	if s.cfg.NewRequestID != nil {
		requestID = s.cfg.NewRequestID()
	}
	// Enqueue resolves the function and qualifier first: one that does not exist is refused here.
	switch err := s.cfg.Enqueue(ctx, name, qualifier, req.body, requestID); {
	case errors.Is(err, functions.ErrNotFound):
		arn := s.functionARN(name)
		if qualifier != "" {
			arn += ":" + qualifier
		}
		return notFound(arn)
	case errors.Is(err, async.ErrQueueFull):
		return &awsError{Status: http.StatusTooManyRequests, Code: "TooManyRequestsException", Message: "the asynchronous invocation queue is full: try again later"}
	case err != nil:
		return err
	}
	s.log.Debug("asynchronous invocation queued", "function", name, "requestId", requestID)
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// functionConfiguration is Lambda's FunctionConfiguration, the fields Gatehouse has.
type functionConfiguration struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string
	Handler          string `json:",omitempty"`
	CodeSize         int64
	Description      string
	Timeout          int
	MemorySize       int
	LastModified     string
	CodeSha256       string
	Version          string
	Environment      *environment `json:",omitempty"`
	SnapStart        snapStartResponse
	State            string
	LastUpdateStatus string
	PackageType      string
	Architectures    []string
}

type environment struct{ Variables map[string]string }

// snapStartResponse is a configuration's SnapStart: ApplyOn PublishedVersions and
// OptimizationStatus On for a function with snapStart, None and Off for one without.
type snapStartResponse struct{ ApplyOn, OptimizationStatus string }

// configuration is v's FunctionConfiguration, for the version label given.
func (s *Server) configuration(v functions.VersionRecord, label string) functionConfiguration {
	m := v.Manifest
	runtime := m.Runtime
	if runtime == "" {
		runtime = spec.RuntimeWasm
	}
	timeout := 0
	if d, err := time.ParseDuration(m.Timeout); err == nil {
		timeout = int((d + time.Second - 1) / time.Second)
	}
	sum := v.ModuleSHA256
	if b, err := hex.DecodeString(sum); err == nil {
		sum = base64.StdEncoding.EncodeToString(b)
	}
	c := functionConfiguration{
		FunctionName: v.Function, FunctionArn: s.functionARN(v.Function), Runtime: runtime, Handler: m.Handler,
		CodeSize: v.ModuleSize, Description: v.Description, Timeout: timeout, MemorySize: m.MemoryMB,
		LastModified: v.CreatedAt.UTC().Format("2006-01-02T15:04:05.000-0700"), CodeSha256: sum, Version: label,
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"x86_64"},
		SnapStart: snapStartResponse{ApplyOn: "None", OptimizationStatus: "Off"},
	}
	if m.SnapStart {
		c.SnapStart = snapStartResponse{ApplyOn: "PublishedVersions", OptimizationStatus: "On"}
	}
	if label != "$LATEST" {
		c.FunctionArn += ":" + label
	}
	if len(m.Environment) > 0 || len(m.Secrets) > 0 {
		vars := map[string]string{}
		for k, val := range m.Environment {
			vars[k] = val
		}
		for _, k := range m.Secrets {
			vars[k] = "(secret)" // the control plane never shows a secret's value
		}
		c.Environment = &environment{Variables: vars}
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// audit records a change made through the AWS API: who is the access key.
func (s *Server) audit(ctx context.Context, req *request, action, target, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	e := adminapi.AuditEntry{Time: time.Now().UTC(), Token: "aws:" + req.keyID, Address: remoteIP(req.r), Action: action, Target: target, Detail: detail}
	if err := s.cfg.Audit(ctx, e); err != nil {
		s.log.Error("aws api: recording an audit entry", "err", err)
	}
}

func remoteIP(r *http.Request) string {
	host, _, _ := strings.Cut(r.RemoteAddr, ":")
	if strings.HasPrefix(r.RemoteAddr, "[") {
		host, _, _ = strings.Cut(strings.TrimPrefix(r.RemoteAddr, "["), "]")
	}
	return host
}
