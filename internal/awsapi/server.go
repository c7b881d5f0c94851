// Package awsapi is Gatehouse's AWS API listener: the AWS wire protocols of the services that AWS's
// own tools drive API Gateway and Lambda with, so that the AWS CLI and SDKs work against a node with
// --endpoint-url. Requests are signed with AWS Signature Version 4 by one of the stack's access keys,
// for the service the request is for and the stack's region; answers and errors take AWS's shapes, so
// SDKs raise the exception types their users catch.
//
// Served so far (docs/aws.md): lambda (2015-03-31, REST-JSON) functions, versions, aliases with
// routing weights, concurrency and Invoke; apigateway v2 (REST-JSON) APIs, integrations, routes,
// stages and deployments; logs (JSON 1.1) reading function logs; iam (query) roles, stored and not
// enforced; sts (query) GetCallerIdentity. Anything else is answered with an error naming the
// operation.
package awsapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/sigv4"
	"gatehouse.dev/gatehouse/internal/spec"
)

// Defaults of Config.
const (
	DefaultRegion    = spec.DefaultRegion
	DefaultAccountID = spec.DefaultAccountID
	// MaxRequestBytes bounds a request body: a CreateFunction's base64 zip of Lambda's 50 MB limit,
	// with room for the JSON around it.
	MaxRequestBytes = 70 << 20
)

// Config configures a Server.
type Config struct {
	// Keys are the access keys whose signatures are accepted. Required.
	Keys []sigv4.Credentials
	// Region is the region requests are signed for and ARNs name; AccountID the account ARNs name.
	Region, AccountID string
	// Registry holds the functions. Required.
	Registry *functions.Registry
	// Check validates a bundle as workers will run it; its error is the caller's fault. Nil checks
	// nothing.
	Check func(ctx context.Context, b *functions.Bundle) error
	// Activate waits until the workers have loaded a published version. Nil waits for nothing.
	Activate func(ctx context.Context, v functions.VersionRecord) error
	// Applied waits until the node's view of the registry satisfies done. Nil waits for nothing.
	Applied func(ctx context.Context, done func(*functions.Snapshot) bool) error
	// Invoke runs a function, as the admin API's invocations do, under the request id given (which
	// its log records carry); NewRequestID makes those ids. Nil: Invoke answers 503.
	Invoke       func(ctx context.Context, function, qualifier string, payload []byte, requestID string) ([]byte, int, error)
	NewRequestID func() string
	// Enqueue queues an asynchronous invocation (InvocationType Event) under the request id given,
	// once the function and qualifier resolve (errors wrap functions.ErrNotFound when they do not);
	// nil answers them 503.
	Enqueue func(ctx context.Context, function, qualifier string, payload []byte, requestID string) error
	// APIs is where API Gateway v2's APIs go; nil answers its calls 503.
	APIs *APIStore
	// Roles keeps IAM roles (stored, not enforced); nil answers IAM calls 503.
	Roles *RoleStore
	// Logs reads function logs, for CloudWatch Logs' operations; nil answers them 503.
	Logs LogSource
	// Audit records control-plane changes; nil records nothing.
	Audit func(ctx context.Context, e adminapi.AuditEntry) error
	// Logger receives failures and changes; nil discards. Secrets and signatures never reach it.
	Logger *slog.Logger
}

// The services whose signatures are accepted, by the name in a signature's credential scope.
var services = []string{"lambda", "sts", "logs", "iam", "apigateway"}

// Server serves the AWS APIs.
type Server struct {
	cfg       Config
	log       *slog.Logger
	verifiers map[string]*sigv4.Verifier // by service
	iamGlobal *sigv4.Verifier            // iam signed for us-east-1, when the stack's region is another
	srv       *http.Server
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("awsapi: no access keys")
	}
	if cfg.Registry == nil {
		return nil, errors.New("awsapi: no registry")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	s := &Server{cfg: cfg, log: cfg.Logger, verifiers: map[string]*sigv4.Verifier{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, svc := range services {
		v, err := sigv4.New(sigv4.Config{Keys: cfg.Keys, Region: cfg.Region, Service: svc})
		if err != nil {
			return nil, err
		}
		s.verifiers[svc] = v
	}
	// IAM is global: SDKs sign it for us-east-1 whatever region they are set to.
	if cfg.Region != "us-east-1" {
		v, err := sigv4.New(sigv4.Config{Keys: cfg.Keys, Region: "us-east-1", Service: "iam"})
		if err != nil {
			return nil, err
		}
		s.iamGlobal = v
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// request is one AWS API call, once read and verified.
type request struct {
	r       *http.Request
	body    []byte
	keyID   string // the access key that signed it
	service string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	svc := serviceOf(r)
	proto := protocolOf(svc)
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestBytes+1))
	if err != nil {
		proto.writeError(w, errBadRequest("reading the request: "+err.Error()))
		return
	}
	if len(body) > MaxRequestBytes {
		proto.writeError(w, &awsError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLargeException",
			Message: "the request is over the limit of 70 MB"})
		return
	}
	v, ok := s.verifiers[svc]
	if !ok {
		proto.writeError(w, &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: "this Gatehouse does not serve the " + strings.TrimSpace(svc+" service") + " (signed for it, or sent where it is served); it serves lambda, apigateway (v2), sts, logs and iam"})
		return
	}
	sr := sigv4.Request{Method: r.Method, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: body}
	keyID, err := v.Verify(sr)
	if svc == "iam" && s.iamGlobal != nil && errors.Is(err, sigv4.ErrScope) {
		keyID, err = s.iamGlobal.Verify(sr)
	}
	if err != nil {
		proto.writeError(w, signatureError(err))
		return
	}
	req := &request{r: r, body: body, keyID: keyID, service: svc}
	switch svc {
	case "lambda":
		s.lambda(w, req)
	case "sts":
		s.sts(w, req)
	case "logs":
		s.logs(w, req)
	case "iam":
		s.iam(w, req)
	case "apigateway":
		s.apigateway(w, req)
	}
}

// serviceOf is the service a request is for: the one its signature's credential scope names (each is
// then verified against that service's rules), or, unsigned, what its shape says.
func serviceOf(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, rest, ok := strings.Cut(auth, "Credential="); ok {
			cred, _, _ = strings.Cut(rest, ",")
		}
	}
	if parts := strings.Split(cred, "/"); len(parts) == 5 {
		return parts[3]
	}
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/") {
		return "lambda"
	}
	return ""
}

// signatureError is the AWS error for a request whose signature does not verify.
func signatureError(err error) *awsError {
	switch {
	case errors.Is(err, sigv4.ErrMissing):
		return &awsError{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException",
			Message: "Missing Authentication Token: sign the request with one of the stack's access keys (AWS Signature Version 4)"}
	case errors.Is(err, sigv4.ErrUnknownKey):
		return &awsError{Status: http.StatusForbidden, Code: "UnrecognizedClientException",
			Message: "The security token included in the request is invalid: the access key is not one of the stack's"}
	case errors.Is(err, sigv4.ErrExpired):
		return &awsError{Status: http.StatusForbidden, Code: "InvalidSignatureException",
			Message: "Signature expired: the request's date is more than 5 minutes from the node's clock"}
	case errors.Is(err, sigv4.ErrScope):
		return &awsError{Status: http.StatusForbidden, Code: "InvalidSignatureException",
			Message: "Credential should be scoped to a valid region and service: " + err.Error()}
	}
	return &awsError{Status: http.StatusForbidden, Code: "InvalidSignatureException",
		Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
}
