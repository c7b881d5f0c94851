// Package stackfile parses and validates Gatehouse stack files (gatehouse.yaml): the functions of a
// stack, their sources and limits, the HTTP and WebSocket APIs, stages and routes that reach them,
// the gateway controls on those (CORS, authorizers, authorization, API keys with usage plans and
// throttles), and the access keys that sign calls to the stack's management endpoints.
//
// Only the wiring (internal/app) imports it: it turns a [Stack] into the configuration of each
// package. The format is documented for users in docs/stack-file.md.
//
// # Errors
//
// [Parse] and [Load] return the first problem they find as an [*Error] whose message starts with
// "FILE:LINE:COLUMN: " and names the key path, for example
//
//	gatehouse.yaml:7:14: functions.hello.timeout: "3x" is not a duration (want e.g. 3s or 500ms)
//
// Problems are found in this order: YAML syntax; the schema version; structure (unknown keys, wrong
// types, missing required keys, sources and JWKS files that do not exist, environment variables
// named by secretFromEnv that are not set), in file order; then values (ranges, names, references
// from routes to functions and authorizers): the stack name, iam, usage plans, functions, then
// APIs. Fix the reported problem and run again to see the next one.
//
// No message quotes an access key's secret.
package stackfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"gatehouse.dev/gatehouse/internal/didyoumean"
	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// SchemaVersion is the only stack file schema version this package reads (`version: 1`).
const SchemaVersion = 1

// Limits and defaults. Where they mirror AWS Lambda or Amazon API Gateway the values are the same,
// so a stack that runs here fits there too.
const (
	// MaxFileSize is the largest stack file accepted, in bytes (1 MiB).
	MaxFileSize = 1 << 20

	// DefaultStackName is the stack name when `name:` is omitted.
	DefaultStackName = "default"

	// DefaultMemoryMB, MinMemoryMB and MaxMemoryMB bound a function's `memory:` (MB), as in Lambda.
	DefaultMemoryMB = 128
	MinMemoryMB     = 128
	MaxMemoryMB     = 10240

	// DefaultTimeout, MinTimeout and MaxTimeout bound a function's `timeout:`. Lambda's minimum is
	// 1 s; Gatehouse also accepts shorter timeouts, down to 1 ms, which helps in tests.
	DefaultTimeout = 3 * time.Second
	// DefaultIdleTimeout, MinIdleTimeout and MaxIdleTimeout bound a function's `idleTimeout:`.
	DefaultIdleTimeout = 5 * time.Minute
	MinIdleTimeout     = time.Second
	MaxIdleTimeout     = 24 * time.Hour
	MinTimeout         = time.Millisecond
	MaxTimeout         = 900 * time.Second

	// MaxEnvironmentSize bounds the sum of len(name)+len(value) over a function's environment
	// variables, in bytes (4 KB, as in Lambda).
	MaxEnvironmentSize = 4096

	// MaxMaxConcurrency bounds `maxConcurrency:` (0 means unlimited).
	MaxMaxConcurrency = 10000
	// MaxMinWarm bounds `minWarm:`; each warm instance holds memory (4–8 MiB for a Go guest).
	MaxMinWarm = 1000

	// DefaultMount is an API's mount when `mount:` is omitted.
	DefaultMount = "/"

	// DefaultStage is the stage an API gets when `stages:` is omitted; it is served without a
	// path prefix.
	DefaultStage = "$default"
	// MaxStageVariables bounds the number of variables of one stage, as in API Gateway.
	MaxStageVariables = 100

	// MaxRoutesPerAPI bounds the routes of one API, as in API Gateway.
	MaxRoutesPerAPI = 300

	// APITypeHTTP and APITypeWebSocket are the API types (`type:`).
	APITypeHTTP      = "http"
	APITypeWebSocket = "websocket"

	// IntegrationFunction is the only integration type for now.
	IntegrationFunction = "function"
	// PayloadFormat2 is the only payload format version for now (the default).
	PayloadFormat2 = "2.0"

	// DefaultIntegrationTimeout, MinIntegrationTimeout and MaxIntegrationTimeout bound an
	// integration's `timeout:`, as for API Gateway HTTP APIs.
	DefaultIntegrationTimeout = 30 * time.Second
	MinIntegrationTimeout     = 50 * time.Millisecond
	MaxIntegrationTimeout     = 30 * time.Second
)

// WebSocket APIs. The defaults are Amazon API Gateway's WebSocket limits.
const (
	// RouteConnect, RouteDisconnect and RouteDefault are the predefined WebSocket route keys; every
	// other key is a custom route key, which must not start with "$".
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
	// MaxWSRouteKeyLength bounds a custom WebSocket route key, in characters.
	MaxWSRouteKeyLength = 128

	// DefaultRouteSelectionExpression is a WebSocket API's `routeSelectionExpression:` when omitted:
	// the route key is the `action` field of each JSON message.
	DefaultRouteSelectionExpression = "$request.body.action"
	// RouteSelectionBodyPrefix starts every route selection expression that selects a field of the
	// JSON message: "$request.body." followed by dot-separated names.
	RouteSelectionBodyPrefix = "$request.body."
	// RouteSelectionAlwaysDefault is the route selection expression that sends every message to the
	// $default route (a literal "$default", escaped as in API Gateway).
	RouteSelectionAlwaysDefault = `\$default`

	// DefaultWSIntegrationTimeout, MinWSIntegrationTimeout and MaxWSIntegrationTimeout bound a
	// WebSocket route's integration `timeout:`, as for API Gateway WebSocket APIs.
	DefaultWSIntegrationTimeout = 29 * time.Second
	MinWSIntegrationTimeout     = 50 * time.Millisecond
	MaxWSIntegrationTimeout     = 29 * time.Second

	// DefaultMaxMessageBytes, MinMaxMessageBytes and MaxMaxMessageBytes bound `maxMessageBytes:`,
	// the largest message a client may send (128 KiB by default, as in API Gateway).
	DefaultMaxMessageBytes = 128 << 10
	MinMaxMessageBytes     = 1 << 10
	MaxMaxMessageBytes     = 16 << 20
	// DefaultMaxFrameBytes and MinMaxFrameBytes bound `maxFrameBytes:`, the largest WebSocket frame a
	// client may send (32 KiB by default, as in API Gateway); it is at most maxMessageBytes, and
	// defaults to maxMessageBytes when that is smaller than DefaultMaxFrameBytes.
	DefaultMaxFrameBytes = 32 << 10
	MinMaxFrameBytes     = 1 << 10
	// DefaultWSIdleTimeout, MinWSIdleTimeout and MaxWSIdleTimeout bound `idleTimeout:`, how long a
	// connection may carry no message before it is closed.
	DefaultWSIdleTimeout = 10 * time.Minute
	MinWSIdleTimeout     = time.Second
	MaxWSIdleTimeout     = 2 * time.Hour
	// DefaultMaxConnectionDuration, MinMaxConnectionDuration and MaxMaxConnectionDuration bound
	// `maxConnectionDuration:`, how long a connection may stay open at all.
	DefaultMaxConnectionDuration = 2 * time.Hour
	MinMaxConnectionDuration     = time.Second
	MaxMaxConnectionDuration     = 24 * time.Hour
	// DefaultSendQueue, MinSendQueue and MaxSendQueue bound `sendQueue:`, the messages queued for one
	// connection before a client too slow to read them is disconnected.
	DefaultSendQueue = 256
	MinSendQueue     = 1
	MaxSendQueue     = 65536
)

// Access keys (`iam:`).
const (
	// DefaultRegion is `iam.region:` when omitted.
	DefaultRegion = "us-east-1"
	// MaxRegionLength bounds `iam.region:`.
	MaxRegionLength = 32
	// MinAccessKeyIDLength and MaxAccessKeyIDLength bound an access key ID ([A-Z0-9]).
	MinAccessKeyIDLength = 16
	MaxAccessKeyIDLength = 128
	// MinSecretLength and MaxSecretLength bound a secret access key, in characters.
	MinSecretLength = 16
	MaxSecretLength = 128
)

// Gateway controls: CORS, authorizers, authorization on routes, API keys with usage plans, and
// throttling. Where they mirror Amazon API Gateway (HTTP APIs unless noted) the limits are the
// same.
const (
	// MaxThrottleRate bounds a throttle's `rate:`, in requests per second; the rate must be more
	// than 0 and may have a fraction (0.5 is one request every two seconds).
	MaxThrottleRate = 100000
	// MaxThrottleBurst bounds a throttle's `burst:`, in requests (0..MaxThrottleBurst).
	MaxThrottleBurst = 100000

	// MaxUsagePlanNameLength bounds a usage plan name ([A-Za-z0-9_-], as API key names).
	MaxUsagePlanNameLength = 64
	// MinQuotaLimit and MaxQuotaLimit bound a quota's `limit:`, in requests per period.
	MinQuotaLimit = 1
	MaxQuotaLimit = 1_000_000_000
	// QuotaPeriodDay, QuotaPeriodWeek and QuotaPeriodMonth are the quota periods (`period:`).
	QuotaPeriodDay   = "day"
	QuotaPeriodWeek  = "week"
	QuotaPeriodMonth = "month"
	// APIKeyHeader is the request header that carries an API key, as in API Gateway.
	APIKeyHeader = "x-api-key"

	// CORSWildcard, in a CORS list, allows any origin, method or header.
	CORSWildcard = "*"
	// MinCORSMaxAge and MaxCORSMaxAge bound `cors.maxAge:`, in seconds.
	MinCORSMaxAge = -1
	MaxCORSMaxAge = 86400

	// MaxAuthorizerNameLength bounds an authorizer name ([A-Za-z0-9_-]).
	MaxAuthorizerNameLength = 128
	// AuthorizerJWT and AuthorizerFunction are the authorizer types (`type:`).
	AuthorizerJWT      = "jwt"
	AuthorizerFunction = "function"

	// DefaultJWTIdentitySource is a JWT authorizer's `identitySource:` when omitted.
	DefaultJWTIdentitySource = "$request.header.Authorization"
	// MaxJWTAudiences bounds a JWT authorizer's `audiences:` (at least one).
	MaxJWTAudiences = 50
	// DefaultJWTSkew and MaxJWTSkew bound a JWT authorizer's `skew:`, the clock difference
	// tolerated when checking exp, nbf and iat.
	DefaultJWTSkew time.Duration = 0
	MaxJWTSkew                   = 5 * time.Minute
	// The signature algorithms a JWT authorizer may accept (`algorithms:`). HMAC algorithms (HS*)
	// and "none" are never accepted. See DefaultJWTAlgorithms.
	JWTAlgRS256 = "RS256"
	JWTAlgRS384 = "RS384"
	JWTAlgRS512 = "RS512"
	JWTAlgES256 = "ES256"
	JWTAlgES384 = "ES384"
	JWTAlgEdDSA = "EdDSA"

	// MaxIdentitySources bounds a function authorizer's `identitySources:` (at least one).
	MaxIdentitySources = 10
	// IdentitySourceHeader, IdentitySourceQuery, IdentitySourceContext and
	// IdentitySourceStageVariable start the identity sources, each followed by a name.
	IdentitySourceHeader        = "$request.header."
	IdentitySourceQuery         = "$request.querystring."
	IdentitySourceContext       = "$context."
	IdentitySourceStageVariable = "$stageVariables."
	// DefaultAuthorizerResultTTL and MaxAuthorizerResultTTL bound a function authorizer's
	// `resultTtl:`; 0 turns caching off.
	DefaultAuthorizerResultTTL time.Duration = 0
	MaxAuthorizerResultTTL                   = time.Hour
	// DefaultAuthorizerTimeout, MinAuthorizerTimeout and MaxAuthorizerTimeout bound a function
	// authorizer's `timeout:`.
	DefaultAuthorizerTimeout = 10 * time.Second
	MinAuthorizerTimeout     = 50 * time.Millisecond
	MaxAuthorizerTimeout     = 10 * time.Second
	// DefaultSimpleResponses is a function authorizer's `simpleResponses:` when omitted.
	DefaultSimpleResponses = true

	// AuthNone, AuthJWT, AuthFunction and AuthIAM are the route authorization types
	// (`authorization.type:`, default AuthNone).
	AuthNone     = "none"
	AuthJWT      = "jwt"
	AuthFunction = "function"
	AuthIAM      = "iam"
	// MaxAuthorizationScopes bounds a route's `authorization.scopes:`.
	MaxAuthorizationScopes = 10
)

// DefaultJWTAlgorithms returns a JWT authorizer's `algorithms:` when omitted: the RSA algorithms,
// the only ones API Gateway's JWT authorizers accept.
func DefaultJWTAlgorithms() []string { return []string{JWTAlgRS256, JWTAlgRS384, JWTAlgRS512} }

// jwtAlgorithms are the algorithms a JWT authorizer may accept.
var jwtAlgorithms = []string{JWTAlgRS256, JWTAlgRS384, JWTAlgRS512, JWTAlgES256, JWTAlgES384, JWTAlgEdDSA}

// Stack is a parsed and validated stack file. [Parse] fills every default, so no field holds a
// zero value that stands for "use the default"; where zero has a meaning (MaxConcurrency 0 is
// unlimited, Host "" is any host) it is documented on the field.
type Stack struct {
	// Version is the schema version (`version:`, required); always SchemaVersion.
	Version int
	// Name is the stack name (`name:`, default DefaultStackName): [a-z0-9][a-z0-9-]{0,62}. It
	// prefixes bus subjects, buckets and keys.
	Name string
	// Dir is the absolute directory of the stack file; relative paths in the file are resolved
	// against it. Not read from YAML.
	Dir string
	// File is the path of the stack file as given to Load (the name given to Parse). Not read
	// from YAML.
	File string
	// Functions are the functions of the stack (`functions:`), by name.
	Functions map[string]Function
	// APIs are the APIs of the stack (`apis:`), by name; at least one.
	APIs map[string]API
	// IAM holds the access keys of the stack (`iam:`).
	IAM IAM
	// UsagePlans are the usage plans of the stack (`usagePlans:`), by name; nil when there are
	// none. API keys, which routes with APIKeyRequired ask for, each belong to one plan; they are
	// made with `gatehouse keys create --plan NAME`, not written in the stack file. A plan applies
	// to every API and stage of the stack.
	UsagePlans map[string]UsagePlan
}

// UsagePlan is one entry of `usagePlans:`.
type UsagePlan struct {
	// Name is the map key: [A-Za-z0-9_-]{1,MaxUsagePlanNameLength}.
	Name string
	// Throttle limits the requests of each key of the plan (`throttle:`); nil for no limit of the
	// plan's own.
	Throttle *Throttle
	// Quota caps the requests of each key of the plan per period (`quota:`); nil for no quota.
	Quota *Quota
}

// Throttle is a token bucket (`throttle:`, or an entry of a stage's `routeThrottles:`): it holds
// up to Burst requests and refills at Rate requests per second; a request that finds it empty is
// refused with 429. Each gateway node keeps its own buckets.
type Throttle struct {
	// Rate is the steady rate in requests per second (`rate:`, required): more than 0, at most
	// MaxThrottleRate.
	Rate float64
	// Burst is the bucket's capacity in requests (`burst:`, required): 0..MaxThrottleBurst.
	Burst int
}

// Quota is a usage plan's `quota:`.
type Quota struct {
	// Limit is the number of requests each key may make per period (`limit:`, required):
	// MinQuotaLimit..MaxQuotaLimit.
	Limit int
	// Period is QuotaPeriodDay, QuotaPeriodWeek or QuotaPeriodMonth (`period:`, required).
	Period string
}

// IAM is the stack's `iam:` section: the access keys that may sign requests to the stack's
// management endpoints, such as a WebSocket API's @connections, with AWS Signature Version 4.
type IAM struct {
	// Region is the region requests are signed for (`region:`, default DefaultRegion): lower-case
	// letters, digits and -, at most MaxRegionLength characters, such as "eu-west-1".
	Region string
	// AccessKeys are the access keys (`accessKeys:`) in file order; nil when there are none.
	// Their IDs are distinct.
	AccessKeys []AccessKey
}

// AccessKey is one entry of `iam.accessKeys:`.
type AccessKey struct {
	// ID is the access key ID (`id:`, required): MinAccessKeyIDLength..MaxAccessKeyIDLength
	// upper-case letters and digits, such as "AKIAIOSFODNN7EXAMPLE".
	ID string
	// Secret is the secret access key: from `secret:`, or the value of the environment variable
	// named by `secretFromEnv:`, read by Parse. MinSecretLength..MaxSecretLength printable ASCII
	// characters without spaces. It never appears in an error message.
	Secret string
}

// String returns the key's ID without the secret, so that printing an AccessKey (or a Stack) with
// %v or %s never shows the secret.
func (k AccessKey) String() string { return "{ID:" + k.ID + " Secret:<hidden>}" }

// GoString is String for %#v.
func (k AccessKey) GoString() string {
	return "stackfile.AccessKey{ID:" + strconv.Quote(k.ID) + ", Secret:<hidden>}"
}

// Where formats a position of path in file as the parser's errors do: "FILE:LINE:COL: PATH".
func Where(file string, line, col int, path string) string {
	if line <= 0 {
		return file + ": " + path
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, line, col, path)
}

// Function is one entry of `functions:`.
type Function struct {
	// Name is the map key: [A-Za-z0-9_-]{1,64}, as a Lambda function name.
	Name string
	// Line and Column are the position of the function's key in the stack file (0 when not read
	// from a file), for later error messages.
	Line, Column int
	// Source is the absolute, cleaned path of the Go source directory or .wasm file (`source:`,
	// required; relative to the stack file's directory).
	Source string
	// Kind says what Source is; decided by statting it.
	Kind SourceKind
	// MemoryMB is the memory limit in MB (`memory:`), MinMemoryMB..MaxMemoryMB, default
	// DefaultMemoryMB.
	MemoryMB int
	// Timeout is the invocation timeout (`timeout:`, a Go duration such as "3s" or "500ms"),
	// MinTimeout..MaxTimeout, default DefaultTimeout.
	Timeout time.Duration
	// Environment holds the environment variables (`environment:`); never nil. Names are
	// [A-Za-z_][A-Za-z0-9_]* and must not start with AWS_ or GATEHOUSE_ (Gatehouse sets those);
	// names and values together take at most MaxEnvironmentSize bytes.
	Environment map[string]string
	// MaxConcurrency caps the concurrent invocations (`maxConcurrency:`), 0..MaxMaxConcurrency;
	// 0 (the default) is unlimited.
	MaxConcurrency int
	// MinWarm is the number of instances kept warm (`minWarm:`), 0..MaxMinWarm, default 0, and
	// at most MaxConcurrency when that is set.
	MinWarm int
	// IdleTimeout is how long an instance may sit unused before it is stopped (`idleTimeout:`, a Go
	// duration), MinIdleTimeout..MaxIdleTimeout, default DefaultIdleTimeout. The MinWarm instances
	// are kept regardless.
	IdleTimeout time.Duration
}

// SourceKind says what a function's source is.
type SourceKind int

const (
	// SourceGo is a directory of Go source, built to WebAssembly by Gatehouse.
	SourceGo SourceKind = iota + 1
	// SourceWasm is a regular file whose name ends in ".wasm".
	SourceWasm
)

// String returns "go" or "wasm".
func (k SourceKind) String() string {
	switch k {
	case SourceGo:
		return "go"
	case SourceWasm:
		return "wasm"
	}
	return "SourceKind(" + strconv.Itoa(int(k)) + ")"
}

// API is one entry of `apis:`.
type API struct {
	// Name is the map key: [A-Za-z0-9_-]{1,128}.
	Name string
	// Type is the API type (`type:`, required): APITypeHTTP or APITypeWebSocket.
	Type string
	// Mount is the path prefix the API is served under (`mount:`, default DefaultMount): "/" or
	// literal segments such as "/shop/v1", without a trailing "/".
	Mount string
	// Host is the lower-cased host name the API answers for (`host:`); "" (the default) is any
	// host.
	Host string
	// Stages are the API's stages (`stages:`), by name; never empty: the default is a single
	// stage named DefaultStage without variables.
	Stages map[string]Stage
	// Routes are the API's routes (`routes:`) in file order; at least one, at most
	// MaxRoutesPerAPI.
	Routes []Route
	// RouteSelectionExpression picks the route of each message of a WebSocket API
	// (`routeSelectionExpression:`, default DefaultRouteSelectionExpression):
	// RouteSelectionBodyPrefix followed by dot-separated names of letters, digits and _ (such as
	// "$request.body.action" or "$request.body.meta.type"), or RouteSelectionAlwaysDefault. "" for
	// HTTP APIs.
	RouteSelectionExpression string
	// WebSocket holds the connection limits of a WebSocket API (`limits:`), every default filled;
	// nil for HTTP APIs.
	WebSocket *WebSocketLimits
	// CORS is the CORS configuration of an HTTP API (`cors:`); nil when there is none, and always
	// for WebSocket APIs.
	CORS *CORS
	// Authorizers are the API's authorizers (`authorizers:`), by name; nil when there are none.
	// WebSocket APIs have function authorizers only.
	Authorizers map[string]Authorizer
}

// CORS is an HTTP API's `cors:`. The gateway answers CORS preflight requests itself and adds the
// CORS response headers to other responses. Empty lists are nil.
type CORS struct {
	// AllowOrigins are the origins allowed (`allowOrigins:`): CORSWildcard or lower-case origins
	// such as "https://example.com" (scheme, host and optional port; no path).
	AllowOrigins []string
	// AllowMethods are the methods allowed (`allowMethods:`): GET, POST, PUT, PATCH, DELETE, HEAD,
	// OPTIONS or CORSWildcard.
	AllowMethods []string
	// AllowHeaders are the request headers allowed (`allowHeaders:`): header names, as written,
	// or CORSWildcard.
	AllowHeaders []string
	// ExposeHeaders are the response headers exposed to scripts (`exposeHeaders:`): header names,
	// as written, or CORSWildcard.
	ExposeHeaders []string
	// MaxAge is how long browsers may cache a preflight answer, in seconds (`maxAge:`),
	// MinCORSMaxAge..MaxCORSMaxAge; nil (the default) sends no access-control-max-age header.
	MaxAge *int
	// AllowCredentials lets browsers send credentials (`allowCredentials:`, default false); not
	// with CORSWildcard in AllowOrigins.
	AllowCredentials bool
}

// Authorizer is one entry of an API's `authorizers:`. Exactly one of JWT and Function is set,
// the one Type names.
type Authorizer struct {
	// Name is the map key: [A-Za-z0-9_-]{1,MaxAuthorizerNameLength}. Routes refer to it.
	Name string
	// Type is AuthorizerJWT or AuthorizerFunction (`type:`, required). WebSocket APIs have
	// function authorizers only.
	Type string
	// JWT holds the settings of a JWT authorizer; nil for other types.
	JWT *JWTAuthorizer
	// Function holds the settings of a function authorizer; nil for other types.
	Function *FunctionAuthorizer
}

// JWTAuthorizer is the settings of an authorizer of type jwt: it accepts requests that carry a
// valid JSON Web Token from Issuer for one of Audiences.
type JWTAuthorizer struct {
	// Issuer is the token issuer (`issuer:`, required), compared with the iss claim: an https
	// URL, or http for localhost, 127.0.0.1 and [::1] (for tests).
	Issuer string
	// Audiences are the accepted audiences (`audiences:`, required): 1..MaxJWTAudiences non-empty
	// strings, compared with the aud or client_id claim.
	Audiences []string
	// IdentitySource is where the token is (`identitySource:`, default
	// DefaultJWTIdentitySource): IdentitySourceHeader or IdentitySourceQuery followed by a name.
	// A "Bearer " prefix on the value is removed.
	IdentitySource string
	// JWKSURL is where the signing keys are fetched (`jwksUrl:`), with the same rule as Issuer
	// (a query is allowed); "" when not set.
	JWKSURL string
	// JWKSFile is the absolute path of a file holding the signing keys as a JSON Web Key Set
	// (`jwksFile:`, relative to the stack file's directory, must exist); "" when not set. At most
	// one of JWKSURL and JWKSFile is set; with neither, the keys are found by OpenID Connect
	// discovery from Issuer.
	JWKSFile string
	// Algorithms are the signature algorithms accepted (`algorithms:`, default
	// DefaultJWTAlgorithms()): some of JWTAlgRS256, JWTAlgRS384, JWTAlgRS512, JWTAlgES256,
	// JWTAlgES384 and JWTAlgEdDSA; never HMAC or none.
	Algorithms []string
	// Skew is the clock difference tolerated when checking exp, nbf and iat (`skew:`),
	// 0..MaxJWTSkew, default DefaultJWTSkew.
	Skew time.Duration
}

// FunctionAuthorizer is the settings of an authorizer of type function: a function of the stack
// decides, from the identity sources and the request, whether the request may go on.
type FunctionAuthorizer struct {
	// Function is the function that decides (`function:`, required): a function of the stack,
	// optionally qualified as an integration target.
	Function string
	// IdentitySources are the request values the decision depends on (`identitySources:`,
	// required): 1..MaxIdentitySources of IdentitySourceHeader, IdentitySourceQuery,
	// IdentitySourceContext or IdentitySourceStageVariable followed by a name. A request that
	// lacks one is refused with 401 without calling the function; cached results are keyed on
	// their values.
	IdentitySources []string
	// ResultTTL is how long a decision is cached (`resultTtl:`), 0..MaxAuthorizerResultTTL,
	// default DefaultAuthorizerResultTTL (0: not cached).
	ResultTTL time.Duration
	// SimpleResponses says the function answers {"isAuthorized": BOOL, "context": {…}} (`simpleResponses:`,
	// default DefaultSimpleResponses); false: it answers with an IAM policy document.
	SimpleResponses bool
	// Timeout bounds one call of the function (`timeout:`),
	// MinAuthorizerTimeout..MaxAuthorizerTimeout, default DefaultAuthorizerTimeout.
	Timeout time.Duration
}

// WebSocketLimits is a WebSocket API's `limits:`.
type WebSocketLimits struct {
	// MaxMessageBytes is the largest message a client may send, in bytes (`maxMessageBytes:`),
	// MinMaxMessageBytes..MaxMaxMessageBytes, default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxFrameBytes is the largest frame a client may send, in bytes (`maxFrameBytes:`),
	// MinMaxFrameBytes..MaxMessageBytes, default the smaller of DefaultMaxFrameBytes and
	// MaxMessageBytes.
	MaxFrameBytes int
	// IdleTimeout is how long a connection may carry no message before it is closed
	// (`idleTimeout:`), MinWSIdleTimeout..MaxWSIdleTimeout, default DefaultWSIdleTimeout.
	IdleTimeout time.Duration
	// MaxConnectionDuration is how long a connection may stay open (`maxConnectionDuration:`),
	// MinMaxConnectionDuration..MaxMaxConnectionDuration, default DefaultMaxConnectionDuration.
	MaxConnectionDuration time.Duration
	// SendQueue is the number of messages queued for one connection before a client that does not
	// read them fast enough is disconnected (`sendQueue:`), MinSendQueue..MaxSendQueue, default
	// DefaultSendQueue.
	SendQueue int
}

// Stage is one entry of an API's `stages:`.
type Stage struct {
	// Name is the map key: DefaultStage or [A-Za-z0-9_-]{1,128}.
	Name string
	// Variables are the stage variables (`variables:`); never nil. At most MaxStageVariables;
	// names [A-Za-z0-9_]{1,64}, values [A-Za-z0-9-._~:/?#&=,]{1,512}.
	Variables map[string]string
	// Throttle is the throttle of every route of the stage (`throttle:`); nil for none.
	Throttle *Throttle
	// RouteThrottles are throttles for single routes that replace Throttle for them
	// (`routeThrottles:`), by route key, each a key of one of the API's routes; nil when there are
	// none.
	RouteThrottles map[string]Throttle
}

// Route is one entry of an API's `routes:`.
type Route struct {
	// Key is the map key. In an HTTP API: "$default" or "METHOD /path"; only its shape is checked
	// here (upper-case method word, one space, a path starting with "/"), the gateway checks it
	// precisely. In a WebSocket API: RouteConnect, RouteDisconnect, RouteDefault or a custom key of
	// 1..MaxWSRouteKeyLength characters that does not start with "$".
	Key string
	// Integration is where the route sends requests.
	Integration Integration
	// RouteResponse makes a WebSocket route two-way (`routeResponse:`, default false): the body of
	// the function's response is sent back to the client that sent the message. Always false in
	// HTTP APIs and on the $connect and $disconnect routes.
	RouteResponse bool
	// Authorization says who may call the route (`authorization:`).
	Authorization Authorization
	// APIKeyRequired makes the route ask for an API key of one of UsagePlans in the APIKeyHeader
	// header (`apiKeyRequired:`, default false). In WebSocket APIs, only on RouteConnect.
	APIKeyRequired bool
	// Line and Column are the position of the route key in the stack file (0 when not read from a
	// file), for later error messages.
	Line, Column int
}

// Authorization is a route's `authorization:`. In WebSocket APIs only the RouteConnect route may
// have one, of type AuthFunction or AuthIAM.
type Authorization struct {
	// Type is AuthNone (`type:`, the default), AuthJWT, AuthFunction or AuthIAM. AuthIAM asks for
	// requests signed with AWS Signature Version 4 by one of the stack's access keys.
	Type string
	// Authorizer is the name of an authorizer of the API whose type is Type (`authorizer:`):
	// required for AuthJWT and AuthFunction, "" otherwise.
	Authorizer string
	// Scopes are the scopes a token must have at least one of (`scopes:`): up to
	// MaxAuthorizationScopes, for AuthJWT only; nil when none.
	Scopes []string
}

// Integration is a route's target: from the shorthand `function: NAME` (with an optional
// `timeout:` beside it) or from `integration: {type, target, payloadFormatVersion, timeout}`.
type Integration struct {
	// Type is IntegrationFunction (`type:`, default IntegrationFunction).
	Type string
	// Target is the name of a function of the stack (`target:`, or the shorthand's `function:`),
	// optionally qualified as in Lambda: NAME:$LATEST, NAME:3 (a version) or NAME:prod (an alias).
	Target string
	// PayloadFormatVersion is PayloadFormat2 (`payloadFormatVersion:`, the default) in HTTP APIs,
	// and "" in WebSocket APIs, whose events have a format of their own.
	PayloadFormatVersion string
	// Timeout is the integration timeout (`timeout:`): in HTTP APIs
	// MinIntegrationTimeout..MaxIntegrationTimeout, default DefaultIntegrationTimeout; in
	// WebSocket APIs MinWSIntegrationTimeout..MaxWSIntegrationTimeout, default
	// DefaultWSIntegrationTimeout.
	Timeout time.Duration
}

// Error is a problem in a stack file.
//
// Error() formats it as "FILE:LINE:COLUMN: PATH: MSG". Line is 0 when the problem has no place in
// the file (the file cannot be read, or Validate checked a Stack built in code); then the format
// is "FILE: PATH: MSG". Path is omitted when empty (YAML syntax errors).
type Error struct {
	// File is the stack file as given to Load, or the name given to Parse.
	File string
	// Line and Column are 1-based, of the offending key or value.
	Line, Column int
	// Path is the key path, e.g. `functions.hello.timeout` or `apis.web.routes["GET /hello"]`.
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error, if any (reading the file); see Unwrap.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" || e.Line > 0 {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, e.g. an fs.ErrNotExist from Load.
func (e *Error) Unwrap() error { return e.Err }

// Load reads the stack file at path and parses it with Parse, resolving relative paths against
// the file's directory. Errors are [*Error]; one that comes from reading the file wraps the
// underlying error (errors.Is(err, fs.ErrNotExist) works) and has Line 0.
func Load(path string) (*Stack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, "cannot open stack file", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, readError(path, "cannot read stack file", err)
	}
	return Parse(path, data, filepath.Dir(path))
}

func readError(path, doing string, err error) *Error {
	msg := err.Error()
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &Error{File: path, Msg: doing + ": " + msg, Err: err}
}

// Parse parses and validates a stack file held in data. name is used in error messages and as
// Stack.File; dir is the directory relative paths are resolved against (made absolute; "" is the
// working directory). Parse stats every function source to decide its Kind, and reads the
// environment variables that access keys name in secretFromEnv. Errors are [*Error].
func Parse(name string, data []byte, dir string) (*Stack, error) {
	if name == "" {
		name = "<stack>"
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the file is larger than the limit of %d bytes (1 MiB)", MaxFileSize)}
	}
	if err := checkShape(name, data); err != nil {
		return nil, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{File: name, Msg: "cannot resolve directory " + strconv.Quote(dir) + ": " + err.Error(), Err: err}
	}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: name, dir: absDir, root: root}
	s, ord, err := d.stack(root)
	if err != nil {
		return nil, err
	}
	s.File = name
	s.Dir = absDir
	c := checker{s: s, funcs: ord.funcs, apis: ord.apis, plans: ord.plans}
	if e := c.check(); e != nil {
		d.decoded = 0 // locate decodes again, a little
		line, col, path := d.locate(root, e.path, e.atKey)
		return nil, &Error{File: name, Line: line, Column: col, Path: formatPath(path), Msg: e.msg}
	}
	return s, nil
}

// Validate checks the values of s as Parse does after decoding: names, ranges, references from
// routes to functions, that there is an API and that no two APIs share a host and mount. It
// reports the first problem as an [*Error] with Line 0. It does not touch the file system: Source
// must be absolute and Kind set. Use it for a Stack built in code; Parse has already made these
// checks.
func (s *Stack) Validate() error {
	c := checker{s: s, funcs: slices.Sorted(maps.Keys(s.Functions)), apis: slices.Sorted(maps.Keys(s.APIs)), plans: slices.Sorted(maps.Keys(s.UsagePlans))}
	if e := c.check(); e != nil {
		return &Error{File: s.File, Path: formatPath(e.path), Msg: e.msg}
	}
	return nil
}

// Shape limits. The YAML parser takes time and memory quadratic in the depth of nested flow
// collections and in the number of keys of one block mapping, so a 1 MiB file of either could take
// minutes and gigabytes. Real stack files are far from both limits.
const (
	maxFlowDepth      = 100  // [ and { open at once
	maxLinesOneIndent = 5000 // consecutive lines at one indentation (keys of one mapping)

	// maxDecodedEntries bounds the keys decoded, counting each use of an alias anew.
	maxDecodedEntries = 200_000
)

// checkShape refuses data beyond the shape limits, counting roughly: brackets anywhere but in
// comment lines, and lines by indentation.
func checkShape(name string, data []byte) *Error {
	type level struct{ indent, lines int }
	var levels []level
	depth := 0
	for line := 1; len(data) > 0; line++ {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		text := bytes.TrimLeft(l, " ")
		if len(bytes.TrimSpace(text)) == 0 || text[0] == '#' {
			continue
		}
		for col, c := range l {
			switch c {
			case '[', '{':
				if depth++; depth > maxFlowDepth {
					return &Error{File: name, Line: line, Column: col + 1,
						Msg: fmt.Sprintf("[ and { nested more than %d deep", maxFlowDepth)}
				}
			case ']', '}':
				depth = max(depth-1, 0)
			}
		}
		indent := len(l) - len(text)
		for len(levels) > 0 && levels[len(levels)-1].indent > indent {
			levels = levels[:len(levels)-1]
		}
		if n := len(levels); n > 0 && levels[n-1].indent == indent {
			if levels[n-1].lines++; levels[n-1].lines > maxLinesOneIndent {
				return &Error{File: name, Line: line, Column: indent + 1,
					Msg: fmt.Sprintf("more than %d keys in one mapping", maxLinesOneIndent)}
			}
		} else {
			levels = append(levels, level{indent: indent, lines: 1})
		}
	}
	return nil
}

// parseYAML parses data into the body of its single document; a nil body is an empty file.
func parseYAML(name string, data []byte) (body ast.Node, err error) {
	// The YAML parser is third-party code fed with user input: turn a panic in it into an error
	// rather than crashing the command.
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, &Error{File: name, Line: 1, Column: 1, Msg: fmt.Sprintf("invalid YAML (the parser failed: %v)", r)}
		}
	}()
	f, perr := parser.ParseBytes(data, 0)
	if perr != nil {
		e := &Error{File: name, Line: 1, Column: 1, Msg: "invalid YAML: " + perr.Error()}
		var ye yaml.Error
		if errors.As(perr, &ye) {
			e.Msg = "invalid YAML: " + yamlnode.ReadablePositions(ye.GetMessage())
			if tk := ye.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
				e.Line, e.Column = tk.Position.Line, max(tk.Position.Column, 1)
			}
		}
		// One line, whatever the parser quotes from the input.
		e.Msg = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(e.Msg)
		return nil, e
	}
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			line, col := yamlnode.Position(doc.Body)
			return nil, &Error{File: name, Line: line, Column: col, Msg: "a stack file holds one YAML document; remove this second one"}
		}
		body = doc.Body
	}
	return body, nil
}

// ---------------------------------------------------------------------------------------------
// Decoding: YAML structure and types → Stack.
//
// The decoder walks the AST itself instead of using yaml.Unmarshal, so that every error knows the
// position and key path of what it is about, numbers are never silently converted (memory: 128.5,
// timeout: 3), environment values keep the text as written (PORT: 08080), and routes keep file
// order and line numbers. It is strict: unknown keys are errors at every level. Anchors, aliases,
// merge keys (<<) and the !!str tag work as in YAML.

type decoder struct {
	file    string
	dir     string
	root    ast.Node                     // the document body
	anchors map[string][]*ast.AnchorNode // by name; collected on first use of an alias
	decoded int                          // entries decoded so far, for maxDecodedEntries
}

// order records the file order of functions and APIs, so checks report the first problem in the
// file.
type order struct {
	funcs, apis, plans []string
}

// entry is one key/value pair of a mapping, after merge keys have been expanded.
type entry struct {
	key   string
	keyAt ast.Node // the key as written
	val   ast.Node // the value as written (an alias, anchor or tag too); for `key:` alone, a null at the key
}

func (d *decoder) errAt(n ast.Node, path []string, format string, args ...any) *Error {
	line, col := yamlnode.Position(n)
	return &Error{File: d.file, Line: line, Column: col, Path: formatPath(path), Msg: fmt.Sprintf(format, args...)}
}

func isImplicitNull(n ast.Node) bool {
	nn, ok := n.(*ast.NullNode)
	return ok && nn != nil && nn.Token != nil && nn.Token.Type == token.ImplicitNullType
}

// maxIndirections bounds chains of anchors, aliases and tags (and catches alias cycles).
const maxIndirections = 64

// resolve follows anchors, aliases and tags from the node as written to the node that holds the
// value. It returns nil for null. str reports a !!str tag.
func (d *decoder) resolve(path []string, n ast.Node) (v ast.Node, str bool, err error) {
	written := n
	for range maxIndirections {
		if yamlnode.IsNil(n) {
			return nil, str, nil
		}
		switch t := n.(type) {
		case *ast.NullNode:
			return nil, str, nil
		case *ast.AnchorNode:
			n = t.Value
		case *ast.AliasNode:
			a := d.anchorFor(t)
			if a == nil {
				name := ""
				if t.Value != nil {
					name = t.Value.String()
				}
				name = printable(name)
				return nil, false, d.errAt(t, path, "alias *%s does not refer to an anchor (&%s) defined before it", name, name)
			}
			n = a.Value
		case *ast.TagNode:
			tag := ""
			if t.Start != nil {
				tag = t.Start.Value
			}
			switch tag {
			case "!!str", "!<tag:yaml.org,2002:str>":
				str = true
			case "!!map", "!!seq", "!<tag:yaml.org,2002:map>", "!<tag:yaml.org,2002:seq>":
			default:
				return nil, false, d.errAt(t, path, "the YAML tag %s is not supported (only !!str)", printable(tag))
			}
			n = t.Value
		default:
			return n, str, nil
		}
	}
	return nil, false, d.errAt(written, path, "too many nested anchors, aliases or tags (or an alias that refers to itself)")
}

// anchorFor returns the last anchor with the alias's name that is defined before the alias.
func (d *decoder) anchorFor(alias *ast.AliasNode) *ast.AnchorNode {
	if alias.Value == nil {
		return nil
	}
	if d.anchors == nil {
		d.anchors = map[string][]*ast.AnchorNode{}
		if d.root != nil {
			ast.Walk(anchorCollector(d.anchors), d.root)
		}
		for _, as := range d.anchors {
			slices.SortStableFunc(as, func(a, b *ast.AnchorNode) int {
				al, ac := yamlnode.Position(a)
				bl, bc := yamlnode.Position(b)
				return cmp.Or(cmp.Compare(al, bl), cmp.Compare(ac, bc))
			})
		}
	}
	// Anchors are sorted by position: find the last one before the alias.
	as := d.anchors[alias.Value.String()]
	al, ac := yamlnode.Position(alias)
	i := sort.Search(len(as), func(i int) bool {
		l, c := yamlnode.Position(as[i])
		return l > al || (l == al && c >= ac)
	})
	if i == 0 {
		return nil
	}
	return as[i-1]
}

type anchorCollector map[string][]*ast.AnchorNode

func (m anchorCollector) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a != nil && a.Name != nil {
		name := a.Name.String()
		m[name] = append(m[name], a)
	}
	return m
}

// entries returns the key/value pairs of the mapping written at n (none for null), with merge keys
// expanded: explicit keys win over merged ones, and earlier merged mappings over later ones.
func (d *decoder) entries(path []string, n ast.Node) ([]entry, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, nil
	}
	m, ok := v.(*ast.MappingNode)
	if !ok {
		return nil, d.typeError(path, n, v, "a mapping")
	}
	es, err := d.mapEntries(path, m, map[*ast.MappingNode]bool{})
	if err != nil {
		return nil, err
	}
	// Aliases can make a small file expand to a huge stack (one list of routes used by
	// thousands of APIs); bound the work.
	if d.decoded += len(es); d.decoded > maxDecodedEntries {
		return nil, d.errAt(n, path, "the file expands (through aliases) to more than %d keys", maxDecodedEntries)
	}
	return es, nil
}

func (d *decoder) mapEntries(path []string, m *ast.MappingNode, seen map[*ast.MappingNode]bool) ([]entry, error) {
	if seen[m] {
		return nil, nil // merged twice, or merged into itself: nothing new
	}
	seen[m] = true
	keys := make([]string, len(m.Values))
	explicit := map[string]bool{}
	for i, mv := range m.Values {
		if mv == nil || yamlnode.IsNil(mv.Key) || mv.Key.IsMergeKey() {
			continue
		}
		k, err := d.keyText(path, mv.Key)
		if err != nil {
			return nil, err
		}
		if explicit[k] {
			return nil, d.errAt(mv.Key, sub(path, k), "duplicate key")
		}
		explicit[k] = true
		keys[i] = k
	}
	added := map[string]bool{}
	out := make([]entry, 0, len(m.Values))
	for i, mv := range m.Values {
		if mv == nil || yamlnode.IsNil(mv.Key) {
			continue
		}
		if !mv.Key.IsMergeKey() {
			val := mv.Value
			if yamlnode.IsNil(val) || isImplicitNull(val) {
				// `key:` with nothing after it: report problems with the value at the key.
				val = ast.Null(mv.Key.GetToken())
			}
			out = append(out, entry{key: keys[i], keyAt: mv.Key, val: val})
			added[keys[i]] = true
			continue
		}
		src, _, err := d.resolve(path, mv.Value)
		if err != nil {
			return nil, err
		}
		sources := []ast.Node{src}
		if seq, ok := src.(*ast.SequenceNode); ok && seq != nil {
			sources = seq.Values
		}
		for _, written := range sources {
			v, _, err := d.resolve(path, written)
			if err != nil {
				return nil, err
			}
			mm, ok := v.(*ast.MappingNode)
			if !ok || mm == nil {
				return nil, d.errAt(mv.Key, path, "<< (merge key) wants a mapping or a list of mappings")
			}
			merged, err := d.mapEntries(path, mm, seen)
			if err != nil {
				return nil, err
			}
			for _, e := range merged {
				if !explicit[e.key] && !added[e.key] {
					out = append(out, e)
					added[e.key] = true
				}
			}
		}
	}
	return out, nil
}

// keyText returns a mapping key as a string; keys must be scalars.
func (d *decoder) keyText(path []string, k ast.Node) (string, error) {
	if mk, ok := k.(*ast.MappingKeyNode); ok && mk != nil {
		k = mk.Value
	}
	v, _, err := d.resolve(path, k)
	if err != nil {
		return "", err
	}
	s, ok := yamlnode.ScalarText(v)
	if !ok || v == nil {
		return "", d.errAt(k, path, "keys must be plain strings, not %s", describe(v))
	}
	return s, nil
}

// describe names the kind of a resolved value for type errors.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode:
		return "the string " + yamlnode.QuoteShort(v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(n)
		return "the number " + printable(s)
	case *ast.BoolNode:
		s, _ := yamlnode.ScalarText(n)
		return "the boolean " + printable(s)
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// printable returns s, or s quoted when it holds spaces or characters that are not printable.
func printable(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f || !unicode.IsPrint(r) }) {
		return s
	}
	return yamlnode.QuoteShort(s)
}

func (d *decoder) typeError(path []string, written, v ast.Node, want string) *Error {
	return d.errAt(written, path, "want %s, got %s", want, describe(v))
}

// str decodes a string. Numbers and booleans are refused (quote them), unless tagged !!str.
func (d *decoder) str(path []string, n ast.Node) (string, error) {
	v, tagged, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	switch v.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := yamlnode.ScalarText(v)
		return s, nil
	}
	if s, ok := yamlnode.ScalarText(v); ok && tagged {
		return s, nil
	}
	if s, ok := yamlnode.ScalarText(v); ok {
		return "", d.errAt(n, path, "want a string, got %s (quote it: %q)", describe(v), s)
	}
	return "", d.typeError(path, n, v, "a string")
}

// text decodes any scalar but null as its text: for values such as environment variables, where
// `PORT: 8080` means the string "8080".
func (d *decoder) text(path []string, n ast.Node) (string, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return "", err
	}
	if s, ok := yamlnode.ScalarText(v); ok && v != nil {
		return s, nil
	}
	if v == nil {
		return "", d.errAt(n, path, `want a string, got nothing (null); write "" for an empty value`)
	}
	return "", d.typeError(path, n, v, "a string")
}

// integer decodes a whole number.
func (d *decoder) integer(path []string, n ast.Node, unit string) (int, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	iv, ok := v.(*ast.IntegerNode)
	if !ok || iv == nil {
		if sn, ok := v.(*ast.StringNode); ok && sn.Token != nil && sn.Token.Type == token.StringType &&
			len(sn.Value) > 18 && strings.Trim(sn.Value, "0123456789") == "" {
			// The YAML parser reads integers beyond 64 bits as strings.
			s := sn.Value
			return 0, d.errAt(n, path, "%s is too large", s)
		}
		return 0, d.typeError(path, n, v, "a whole number"+unit)
	}
	switch x := iv.Value.(type) {
	case int64:
		if int64(int(x)) == x {
			return int(x), nil
		}
	case uint64:
		if x <= uint64(int(^uint(0)>>1)) {
			return int(x), nil
		}
	}
	s, _ := yamlnode.ScalarText(v)
	return 0, d.errAt(n, path, "%s is too large", printable(s))
}

// duration decodes a Go duration string such as "3s" or "500ms".
func (d *decoder) duration(path []string, n ast.Node) (time.Duration, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	switch v.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.errAt(n, path, "%s is not a duration: give a unit, e.g. %q or %q", printable(s), s+"s", s+"ms")
	case *ast.StringNode:
		s, _ := yamlnode.ScalarText(v)
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return 0, d.errAt(n, path, "%s is not a duration (want e.g. 3s or 500ms)", yamlnode.QuoteShort(s))
		}
		return dur, nil
	}
	return 0, d.typeError(path, n, v, "a duration such as 3s or 500ms")
}

// fields reads a mapping with a fixed set of keys and returns its entries by key.
func (d *decoder) fields(path []string, n ast.Node, known ...string) (map[string]entry, error) {
	es, err := d.entries(path, n)
	if err != nil {
		return nil, err
	}
	return d.byKey(path, es, known)
}

// byKey returns entries by key; a key not in known is an error.
func (d *decoder) byKey(path []string, es []entry, known []string) (map[string]entry, error) {
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !slices.Contains(known, e.key) {
			return nil, d.errAt(e.keyAt, sub(path, e.key), "unknown key%s; known keys here: %s",
				didyoumean.Suggest(e.key, known), strings.Join(known, ", "))
		}
		out[e.key] = e
	}
	return out, nil
}

// required returns the entry of key in f. Where f has none, the error is at at (the key of the
// mapping) and says what key wants: "required: " and hint, formatted with args.
func (d *decoder) required(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) (entry, error) {
	e, ok := f[key]
	if !ok {
		return e, d.errAt(at, sub(path, key), "required: "+hint, args...)
	}
	return e, nil
}

// requiredStr decodes the string at key in f, which is required (see required).
func (d *decoder) requiredStr(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) (string, error) {
	e, err := d.required(f, at, path, key, hint, args...)
	if err != nil {
		return "", err
	}
	return d.str(sub(path, key), e.val)
}

// requiredStrList decodes the list of strings at key in f, which is required (see required).
func (d *decoder) requiredStrList(f map[string]entry, at ast.Node, path []string, key, hint string, args ...any) ([]string, error) {
	e, err := d.required(f, at, path, key, hint, args...)
	if err != nil {
		return nil, err
	}
	return d.strList(sub(path, key), e.val)
}

// sub returns path extended by key, without sharing path's backing array.
func sub(path []string, keys ...string) []string {
	return append(slices.Clip(path), keys...)
}

func (d *decoder) stack(root ast.Node) (*Stack, order, error) {
	var ord order
	if root == nil {
		return nil, ord, &Error{File: d.file, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the stack file is empty; a stack file starts with \"version: %d\"", SchemaVersion)}
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
			Msg: fmt.Sprintf("required; add \"version: %d\" at the top of the file", SchemaVersion)}
	}
	version, err := d.integer([]string{"version"}, ve.val, "")
	if err != nil {
		return nil, ord, err
	}
	if version != SchemaVersion {
		return nil, ord, d.errAt(ve.val, []string{"version"},
			"version %d is not supported; this Gatehouse reads version %d", version, SchemaVersion)
	}
	f, err := d.byKey(nil, es, []string{"version", "name", "functions", "apis", "iam", "usagePlans"})
	if err != nil {
		return nil, ord, err
	}
	s := &Stack{Version: version, Name: DefaultStackName, Functions: map[string]Function{}, APIs: map[string]API{},
		IAM: IAM{Region: DefaultRegion}}
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
			api, err := d.api(ae)
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
				s.UsagePlans = map[string]UsagePlan{}
			}
			s.UsagePlans[p.Name] = p
			ord.plans = append(ord.plans, p.Name)
		}
	}
	return s, ord, nil
}

func (d *decoder) iam(n ast.Node) (IAM, error) {
	path := []string{"iam"}
	out := IAM{Region: DefaultRegion}
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
		k, err := d.accessKey(sub(keysPath, index(i)), item)
		if err != nil {
			return out, err
		}
		out.AccessKeys = append(out.AccessKeys, k)
	}
	return out, nil
}

func (d *decoder) accessKey(path []string, n ast.Node) (AccessKey, error) {
	var k AccessKey
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
		if !validEnvName(name) {
			return k, d.errAt(ee.val, envPath, "%s is not an environment variable name: want letters, digits and _, not starting with a digit", yamlnode.QuoteShort(name))
		}
		secret, _ := os.LookupEnv(name)
		if secret == "" {
			return k, d.errAt(ee.val, envPath, "the environment variable %s is not set or empty; set it to the secret access key", name)
		}
		if msg := checkSecret(secret); msg != "" {
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
func kind(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "nothing (null)"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return "a " + n.Type().YAMLName()
}

// list returns the items of the sequence written at n (none for null), as written.
func (d *decoder) list(path []string, n ast.Node) ([]ast.Node, error) {
	v, _, err := d.resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	seq, ok := v.(*ast.SequenceNode)
	if !ok || seq == nil {
		return nil, d.typeError(path, n, v, "a list")
	}
	if d.decoded += len(seq.Values); d.decoded > maxDecodedEntries {
		return nil, d.errAt(n, path, "the file expands (through aliases) to more than %d keys", maxDecodedEntries)
	}
	return seq.Values, nil
}

// boolean decodes true or false.
func (d *decoder) boolean(path []string, n ast.Node) (bool, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return false, err
	}
	if b, ok := v.(*ast.BoolNode); ok && b != nil {
		return b.Value, nil
	}
	return false, d.typeError(path, n, v, "true or false")
}

// indexMark starts the path segment of a list index (see index); a map key cannot hold it in
// practice.
const indexMark = "\x00#"

// index returns the path segment of the i-th item of a list; formatPath writes it as [i].
func index(i int) string { return indexMark + strconv.Itoa(i) }

func (d *decoder) function(fe entry) (Function, error) {
	path := []string{"functions", fe.key}
	fn := Function{Name: fe.key, MemoryMB: DefaultMemoryMB, Timeout: DefaultTimeout, IdleTimeout: DefaultIdleTimeout, Environment: map[string]string{}}
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
			if size += len(v.key) + len(val); size > MaxEnvironmentSize {
				return fn, d.errAt(e.keyAt, envPath, "%s", envSizeMsg(size, true))
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
		if fn.IdleTimeout < MinIdleTimeout || fn.IdleTimeout > MaxIdleTimeout {
			return fn, d.errAt(e.val, sub(path, "idleTimeout"), "%s is out of range: want %s to %s", fn.IdleTimeout, MinIdleTimeout, MaxIdleTimeout)
		}
	}
	return fn, nil
}

// source resolves and stats a function's source and sets Source and Kind.
func (d *decoder) source(fn *Function, path []string, n ast.Node) error {
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
		fn.Kind = SourceGo
	case info.Mode().IsRegular() && strings.HasSuffix(abs, ".wasm"):
		fn.Kind = SourceWasm
	default:
		return d.errAt(n, path, "%s is neither a directory of Go source nor a .wasm file", yamlnode.QuoteShort(src))
	}
	fn.Source = abs
	return nil
}

func (d *decoder) api(ae entry) (API, error) {
	path := []string{"apis", ae.key}
	api := API{Name: ae.key, Mount: DefaultMount, Stages: map[string]Stage{}}
	f, err := d.fields(path, ae.val, "type", "mount", "host", "stages", "routes", "routeSelectionExpression", "limits", "cors", "authorizers")
	if err != nil {
		return api, err
	}
	if api.Type, err = d.requiredStr(f, ae.keyAt, path, "type", "%q or %q", APITypeHTTP, APITypeWebSocket); err != nil {
		return api, err
	}
	ws := api.Type == APITypeWebSocket
	for _, k := range []string{"routeSelectionExpression", "limits"} {
		if e, ok := f[k]; ok && api.Type == APITypeHTTP {
			return api, d.errAt(e.keyAt, sub(path, k), "%s", onlyWebSocket)
		}
	}
	if ws {
		api.RouteSelectionExpression = DefaultRouteSelectionExpression
		if e, ok := f["routeSelectionExpression"]; ok {
			if api.RouteSelectionExpression, err = d.str(sub(path, "routeSelectionExpression"), e.val); err != nil {
				return api, err
			}
		}
		var le ast.Node
		if e, ok := f["limits"]; ok {
			le = e.val
		}
		if api.WebSocket, err = d.wsLimits(sub(path, "limits"), le); err != nil {
			return api, err
		}
	}
	if e, ok := f["cors"]; ok {
		if ws {
			return api, d.errAt(e.keyAt, sub(path, "cors"), "%s", onlyHTTPCORS)
		}
		if api.CORS, err = d.cors(sub(path, "cors"), e.val); err != nil {
			return api, err
		}
	}
	if e, ok := f["authorizers"]; ok {
		authPath := sub(path, "authorizers")
		as, err := d.entries(authPath, e.val)
		if err != nil {
			return api, err
		}
		for _, ae := range as {
			a, err := d.authorizer(sub(authPath, ae.key), ae)
			if err != nil {
				return api, err
			}
			if api.Authorizers == nil {
				api.Authorizers = map[string]Authorizer{}
			}
			api.Authorizers[a.Name] = a
		}
	}
	if e, ok := f["mount"]; ok {
		if api.Mount, err = d.str(sub(path, "mount"), e.val); err != nil {
			return api, err
		}
	}
	if e, ok := f["host"]; ok {
		if api.Host, err = d.str(sub(path, "host"), e.val); err != nil {
			return api, err
		}
		api.Host = strings.ToLower(api.Host)
	}
	if e, ok := f["stages"]; ok {
		stagesPath := sub(path, "stages")
		stages, err := d.entries(stagesPath, e.val)
		if err != nil {
			return api, err
		}
		for _, se := range stages {
			st, err := d.stage(sub(stagesPath, se.key), se)
			if err != nil {
				return api, err
			}
			api.Stages[st.Name] = st
		}
	}
	if len(api.Stages) == 0 {
		api.Stages[DefaultStage] = Stage{Name: DefaultStage, Variables: map[string]string{}}
	}
	if e, ok := f["routes"]; ok {
		routesPath := sub(path, "routes")
		routes, err := d.entries(routesPath, e.val)
		if err != nil {
			return api, err
		}
		for i, re := range routes {
			if i == MaxRoutesPerAPI {
				return api, d.errAt(re.keyAt, routesPath, "more than %d routes in one API", MaxRoutesPerAPI)
			}
			r, err := d.route(sub(routesPath, re.key), re, api.Type)
			if err != nil {
				return api, err
			}
			api.Routes = append(api.Routes, r)
		}
	}
	return api, nil
}

func (d *decoder) stage(path []string, se entry) (Stage, error) {
	st := Stage{Name: se.key, Variables: map[string]string{}}
	f, err := d.fields(path, se.val, "variables", "throttle", "routeThrottles")
	if err != nil {
		return st, err
	}
	if e, ok := f["throttle"]; ok {
		t, err := d.throttle(sub(path, "throttle"), e)
		if err != nil {
			return st, err
		}
		st.Throttle = &t
	}
	if e, ok := f["routeThrottles"]; ok {
		rtPath := sub(path, "routeThrottles")
		rts, err := d.entries(rtPath, e.val)
		if err != nil {
			return st, err
		}
		for _, rt := range rts {
			t, err := d.throttle(sub(rtPath, rt.key), rt)
			if err != nil {
				return st, err
			}
			if st.RouteThrottles == nil {
				st.RouteThrottles = map[string]Throttle{}
			}
			st.RouteThrottles[rt.key] = t
		}
	}
	if e, ok := f["variables"]; ok {
		varsPath := sub(path, "variables")
		vars, err := d.entries(varsPath, e.val)
		if err != nil {
			return st, err
		}
		for i, v := range vars {
			if i == MaxStageVariables {
				return st, d.errAt(e.keyAt, varsPath, "more than %d variables in one stage", MaxStageVariables)
			}
			if st.Variables[v.key], err = d.text(sub(varsPath, v.key), v.val); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// onlyWebSocket is the message for WebSocket keys in an HTTP API.
const onlyWebSocket = "only for websocket APIs (type: websocket); remove it from this http API"

// wsLimits decodes a WebSocket API's limits (n may be nil) and fills the defaults.
func (d *decoder) wsLimits(path []string, n ast.Node) (*WebSocketLimits, error) {
	l := &WebSocketLimits{
		MaxMessageBytes:       DefaultMaxMessageBytes,
		IdleTimeout:           DefaultWSIdleTimeout,
		MaxConnectionDuration: DefaultMaxConnectionDuration,
		SendQueue:             DefaultSendQueue,
	}
	f, err := d.fields(path, n, "maxMessageBytes", "maxFrameBytes", "idleTimeout", "maxConnectionDuration", "sendQueue")
	if err != nil {
		return l, err
	}
	ints := []struct {
		key  string
		to   *int
		unit string
	}{{"maxMessageBytes", &l.MaxMessageBytes, " of bytes"}, {"maxFrameBytes", &l.MaxFrameBytes, " of bytes"}, {"sendQueue", &l.SendQueue, ""}}
	for _, x := range ints {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.integer(sub(path, x.key), e.val, x.unit); err != nil {
				return l, err
			}
		}
	}
	durs := []struct {
		key string
		to  *time.Duration
	}{{"idleTimeout", &l.IdleTimeout}, {"maxConnectionDuration", &l.MaxConnectionDuration}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(sub(path, x.key), e.val); err != nil {
				return l, err
			}
		}
	}
	if _, ok := f["maxFrameBytes"]; !ok {
		l.MaxFrameBytes = min(DefaultMaxFrameBytes, l.MaxMessageBytes)
	}
	return l, nil
}

func (d *decoder) route(path []string, re entry, apiType string) (Route, error) {
	line, col := yamlnode.Position(re.keyAt)
	r := Route{Key: re.key, Line: line, Column: col, Integration: Integration{
		Type:                 IntegrationFunction,
		PayloadFormatVersion: PayloadFormat2,
		Timeout:              DefaultIntegrationTimeout,
	}}
	ws := apiType == APITypeWebSocket
	if ws {
		r.Integration.PayloadFormatVersion = ""
		r.Integration.Timeout = DefaultWSIntegrationTimeout
	}
	if v, _, err := d.resolve(path, re.val); err == nil && v != nil {
		if _, ok := v.(*ast.MappingNode); !ok {
			return r, d.errAt(re.val, path, "want a mapping such as {function: NAME}, got %s", describe(v))
		}
	}
	f, err := d.fields(path, re.val, "function", "timeout", "integration", "routeResponse", "authorization", "apiKeyRequired")
	if err != nil {
		return r, err
	}
	r.Authorization.Type = AuthNone
	if e, ok := f["authorization"]; ok {
		if r.Authorization, err = d.authorization(sub(path, "authorization"), e.val); err != nil {
			return r, err
		}
	}
	if e, ok := f["apiKeyRequired"]; ok {
		if r.APIKeyRequired, err = d.boolean(sub(path, "apiKeyRequired"), e.val); err != nil {
			return r, err
		}
	}
	if e, ok := f["routeResponse"]; ok {
		if apiType == APITypeHTTP {
			return r, d.errAt(e.keyAt, sub(path, "routeResponse"), "%s", onlyWebSocket)
		}
		if r.RouteResponse, err = d.boolean(sub(path, "routeResponse"), e.val); err != nil {
			return r, err
		}
	}
	fe, hasFn := f["function"]
	ie, hasInt := f["integration"]
	switch {
	case hasFn && hasInt:
		return r, d.errAt(ie.keyAt, path, "give either function or integration, not both")
	case hasFn:
		if r.Integration.Target, err = d.str(sub(path, "function"), fe.val); err != nil {
			return r, err
		}
		if e, ok := f["timeout"]; ok {
			if r.Integration.Timeout, err = d.duration(sub(path, "timeout"), e.val); err != nil {
				return r, err
			}
		}
	case hasInt:
		if e, ok := f["timeout"]; ok {
			return r, d.errAt(e.keyAt, sub(path, "timeout"), "with integration, put timeout inside it")
		}
		intPath := sub(path, "integration")
		g, err := d.fields(intPath, ie.val, "type", "target", "payloadFormatVersion", "timeout")
		if err != nil {
			return r, err
		}
		if e, ok := g["type"]; ok {
			if r.Integration.Type, err = d.str(sub(intPath, "type"), e.val); err != nil {
				return r, err
			}
		}
		if r.Integration.Target, err = d.requiredStr(g, ie.keyAt, intPath, "target", "the name of a function"); err != nil {
			return r, err
		}
		if e, ok := g["payloadFormatVersion"]; ok {
			if ws {
				return r, d.errAt(e.keyAt, sub(intPath, "payloadFormatVersion"), "only for http APIs: websocket routes receive WebSocket events; remove it")
			}
			// `payloadFormatVersion: 2.0` unquoted is a number in YAML; take its text.
			if r.Integration.PayloadFormatVersion, err = d.text(sub(intPath, "payloadFormatVersion"), e.val); err != nil {
				return r, err
			}
		}
		if e, ok := g["timeout"]; ok {
			if r.Integration.Timeout, err = d.duration(sub(intPath, "timeout"), e.val); err != nil {
				return r, err
			}
		}
	default:
		return r, d.errAt(re.keyAt, path, "the route has no target: add function: NAME (or an integration)")
	}
	return r, nil
}

// onlyHTTPCORS is the message for cors in a WebSocket API.
const onlyHTTPCORS = "only for http APIs: browsers make no CORS preflight requests for WebSocket connections; remove it from this websocket API"

// number decodes a number, whole or with a fraction.
func (d *decoder) number(path []string, n ast.Node, unit string) (float64, error) {
	v, _, err := d.resolve(path, n)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case *ast.IntegerNode:
		switch i := x.Value.(type) {
		case int64:
			return float64(i), nil
		case uint64:
			return float64(i), nil
		}
	case *ast.FloatNode:
		return x.Value, nil
	case *ast.InfinityNode, *ast.NanNode:
		s, _ := yamlnode.ScalarText(v)
		return 0, d.errAt(n, path, "want a finite number%s, got %s", unit, printable(s))
	}
	return 0, d.typeError(path, n, v, "a number"+unit)
}

// strList decodes a list of strings: nil for null, a non-nil slice for a list (even empty).
func (d *decoder) strList(path []string, n ast.Node) ([]string, error) {
	v, _, err := d.resolve(path, n)
	if err != nil || v == nil {
		return nil, err
	}
	items, err := d.list(path, n)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		s, err := d.str(sub(path, index(i)), item)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (d *decoder) usagePlan(path []string, pe entry) (UsagePlan, error) {
	p := UsagePlan{Name: pe.key}
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
		q := Quota{}
		le, err := d.required(g, e.keyAt, qPath, "limit", "the requests each key may make per period, %d to %d", MinQuotaLimit, MaxQuotaLimit)
		if err != nil {
			return p, err
		}
		if q.Limit, err = d.integer(sub(qPath, "limit"), le.val, " of requests"); err != nil {
			return p, err
		}
		if q.Period, err = d.requiredStr(g, e.keyAt, qPath, "period", "%s, %s or %s", QuotaPeriodDay, QuotaPeriodWeek, QuotaPeriodMonth); err != nil {
			return p, err
		}
		p.Quota = &q
	}
	return p, nil
}

// throttle decodes the throttle written as the value of te.
func (d *decoder) throttle(path []string, te entry) (Throttle, error) {
	var t Throttle
	f, err := d.fields(path, te.val, "rate", "burst")
	if err != nil {
		return t, err
	}
	re, err := d.required(f, te.keyAt, path, "rate", "the steady rate in requests per second, more than 0 and at most %d", MaxThrottleRate)
	if err != nil {
		return t, err
	}
	if t.Rate, err = d.number(sub(path, "rate"), re.val, " of requests per second"); err != nil {
		return t, err
	}
	be, err := d.required(f, te.keyAt, path, "burst", "the most requests at once, 0 to %d", MaxThrottleBurst)
	if err != nil {
		return t, err
	}
	if t.Burst, err = d.integer(sub(path, "burst"), be.val, " of requests"); err != nil {
		return t, err
	}
	return t, nil
}

func (d *decoder) cors(path []string, n ast.Node) (*CORS, error) {
	c := &CORS{}
	f, err := d.fields(path, n, "allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials")
	if err != nil {
		return nil, err
	}
	lists := []struct {
		key string
		to  *[]string
	}{{"allowOrigins", &c.AllowOrigins}, {"allowMethods", &c.AllowMethods}, {"allowHeaders", &c.AllowHeaders}, {"exposeHeaders", &c.ExposeHeaders}}
	for _, l := range lists {
		if e, ok := f[l.key]; ok {
			if *l.to, err = d.strList(sub(path, l.key), e.val); err != nil {
				return nil, err
			}
			if len(*l.to) == 0 {
				*l.to = nil
			}
		}
	}
	if e, ok := f["maxAge"]; ok {
		age, err := d.integer(sub(path, "maxAge"), e.val, " of seconds")
		if err != nil {
			return nil, err
		}
		c.MaxAge = &age
	}
	if e, ok := f["allowCredentials"]; ok {
		if c.AllowCredentials, err = d.boolean(sub(path, "allowCredentials"), e.val); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Keys of each authorizer type.
var (
	jwtAuthorizerKeys      = []string{"issuer", "audiences", "identitySource", "jwksUrl", "jwksFile", "algorithms", "skew"}
	functionAuthorizerKeys = []string{"function", "identitySources", "resultTtl", "simpleResponses", "timeout"}
)

func (d *decoder) authorizer(path []string, ae entry) (Authorizer, error) {
	a := Authorizer{Name: ae.key}
	es, err := d.entries(path, ae.val)
	if err != nil {
		return a, err
	}
	te, ok := findEntry(es, "type")
	if !ok {
		return a, d.errAt(ae.keyAt, sub(path, "type"), "required: %q or %q", AuthorizerJWT, AuthorizerFunction)
	}
	if a.Type, err = d.str(sub(path, "type"), te.val); err != nil {
		return a, err
	}
	var own, others []string
	switch a.Type {
	case AuthorizerJWT:
		own, others = jwtAuthorizerKeys, functionAuthorizerKeys
	case AuthorizerFunction:
		own, others = functionAuthorizerKeys, jwtAuthorizerKeys
	default:
		return a, d.errAt(te.val, sub(path, "type"), "unknown authorizer type %s%s: want %q or %q",
			yamlnode.QuoteShort(a.Type), didyoumean.Suggest(a.Type, []string{AuthorizerJWT, AuthorizerFunction}), AuthorizerJWT, AuthorizerFunction)
	}
	for _, e := range es {
		if slices.Contains(others, e.key) {
			other := AuthorizerJWT
			if a.Type == AuthorizerJWT {
				other = AuthorizerFunction
			}
			return a, d.errAt(e.keyAt, sub(path, e.key), "only for %s authorizers; this one has type: %s", other, a.Type)
		}
	}
	f, err := d.byKey(path, es, append([]string{"type"}, own...))
	if err != nil {
		return a, err
	}
	if a.Type == AuthorizerJWT {
		a.JWT, err = d.jwtAuthorizer(path, ae.keyAt, f)
	} else {
		a.Function, err = d.functionAuthorizer(path, ae.keyAt, f)
	}
	return a, err
}

func (d *decoder) jwtAuthorizer(path []string, at ast.Node, f map[string]entry) (*JWTAuthorizer, error) {
	j := &JWTAuthorizer{IdentitySource: DefaultJWTIdentitySource, Algorithms: DefaultJWTAlgorithms(), Skew: DefaultJWTSkew}
	var err error
	if j.Issuer, err = d.requiredStr(f, at, path, "issuer", "the token issuer, an https URL such as https://id.example.com"); err != nil {
		return nil, err
	}
	if j.Audiences, err = d.requiredStrList(f, at, path, "audiences", "the audiences a token may be for, such as [api://web]"); err != nil {
		return nil, err
	}
	strs := []struct {
		key string
		to  *string
	}{{"identitySource", &j.IdentitySource}, {"jwksUrl", &j.JWKSURL}}
	for _, x := range strs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.str(sub(path, x.key), e.val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["jwksFile"]; ok {
		if _, both := f["jwksUrl"]; both {
			return nil, d.errAt(e.keyAt, path, "give either jwksUrl or jwksFile, not both")
		}
		if j.JWKSFile, err = d.jwksFile(sub(path, "jwksFile"), e.val); err != nil {
			return nil, err
		}
	}
	if e, ok := f["algorithms"]; ok {
		algs, err := d.strList(sub(path, "algorithms"), e.val)
		if err != nil {
			return nil, err
		}
		if algs != nil {
			j.Algorithms = algs
		}
	}
	if e, ok := f["skew"]; ok {
		if j.Skew, err = d.duration(sub(path, "skew"), e.val); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// jwksFile resolves a JWT authorizer's key file against the stack file's directory and checks
// that it is a regular file.
func (d *decoder) jwksFile(path []string, n ast.Node) (string, error) {
	name, err := d.str(path, n)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(name) == "" || strings.ContainsRune(name, 0) {
		return "", d.errAt(n, path, "%s is not a file name; want the path of a JSON Web Key Set file, such as ./keys.json", yamlnode.QuoteShort(name))
	}
	abs := name
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(d.dir, abs)
	}
	abs = filepath.Clean(abs)
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", d.errAt(n, path, "%s does not exist (looked for %q)", yamlnode.QuoteShort(name), abs)
	case err != nil:
		return "", d.errAt(n, path, "cannot use %s: %v", yamlnode.QuoteShort(name), err)
	case !info.Mode().IsRegular():
		return "", d.errAt(n, path, "%s is not a file; want a JSON Web Key Set file, such as ./keys.json", yamlnode.QuoteShort(name))
	}
	return abs, nil
}

func (d *decoder) functionAuthorizer(path []string, at ast.Node, f map[string]entry) (*FunctionAuthorizer, error) {
	a := &FunctionAuthorizer{ResultTTL: DefaultAuthorizerResultTTL, SimpleResponses: DefaultSimpleResponses, Timeout: DefaultAuthorizerTimeout}
	var err error
	if a.Function, err = d.requiredStr(f, at, path, "function", "the function that decides, a function of this stack"); err != nil {
		return nil, err
	}
	if a.IdentitySources, err = d.requiredStrList(f, at, path, "identitySources", "the request values the decision depends on, such as [$request.header.Authorization]"); err != nil {
		return nil, err
	}
	durs := []struct {
		key string
		to  *time.Duration
	}{{"resultTtl", &a.ResultTTL}, {"timeout", &a.Timeout}}
	for _, x := range durs {
		if e, ok := f[x.key]; ok {
			if *x.to, err = d.duration(sub(path, x.key), e.val); err != nil {
				return nil, err
			}
		}
	}
	if e, ok := f["simpleResponses"]; ok {
		if a.SimpleResponses, err = d.boolean(sub(path, "simpleResponses"), e.val); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) authorization(path []string, n ast.Node) (Authorization, error) {
	a := Authorization{Type: AuthNone}
	f, err := d.fields(path, n, "type", "authorizer", "scopes")
	if err != nil {
		return a, err
	}
	if e, ok := f["type"]; ok {
		if a.Type, err = d.str(sub(path, "type"), e.val); err != nil {
			return a, err
		}
	}
	if e, ok := f["authorizer"]; ok {
		if a.Authorizer, err = d.str(sub(path, "authorizer"), e.val); err != nil {
			return a, err
		}
	}
	if e, ok := f["scopes"]; ok {
		if a.Scopes, err = d.strList(sub(path, "scopes"), e.val); err != nil {
			return a, err
		}
		if len(a.Scopes) == 0 {
			a.Scopes = nil
		}
	}
	return a, nil
}

// locate finds the position of the key (atKey) or value at path, for errors found after
// decoding. Where the path is not in the file (a default value, or a shorthand route), it returns
// the deepest key that is, and the path of what was found. It runs only on the error path.
func (d *decoder) locate(root ast.Node, path []string, atKey bool) (line, col int, found []string) {
	cur := root
	var at ast.Node // the deepest key found, or the value at the end of the path
	complete := false
	for i := 0; i < len(path); i++ {
		if rest, ok := strings.CutPrefix(path[i], indexMark); ok {
			// A list item: it has no key; point at the item.
			items, err := d.list(found, cur)
			n, aerr := strconv.Atoi(rest)
			if err != nil || aerr != nil || n < 0 || n >= len(items) {
				break
			}
			found = append(found, path[i])
			at, cur = items[n], items[n]
			complete = i == len(path)-1
			continue
		}
		es, err := d.entries(found, cur)
		if err != nil {
			break
		}
		e, ok := findEntry(es, path[i])
		if !ok && path[i] == "integration" && len(found) == 4 && found[0] == "apis" && found[2] == "routes" && i+1 < len(path) {
			// A shorthand route: integration.target is written as function, and
			// integration.timeout as timeout beside it.
			i++
			switch path[i] {
			case "target":
				e, ok = findEntry(es, "function")
			case "timeout":
				e, ok = findEntry(es, "timeout")
			}
		}
		if !ok {
			break
		}
		found = append(found, e.key)
		at, cur = e.keyAt, e.val
		if i == len(path)-1 {
			complete = true
			if !atKey && !yamlnode.IsNil(e.val) {
				at = e.val
			}
		}
	}
	if at == nil {
		return 1, 1, path
	}
	line, col = yamlnode.Position(at)
	if !complete {
		// Only a prefix is written (the value is a default): point at it, name the whole path.
		return line, col, path
	}
	return line, col, found
}

func findEntry(es []entry, key string) (entry, bool) {
	for _, e := range es {
		if e.key == key {
			return e, true
		}
	}
	return entry{}, false
}

// ---------------------------------------------------------------------------------------------
// Checking values. The checker is shared by Parse (which then finds the position in the file) and
// Stack.Validate.

type checkErr struct {
	path  []string
	atKey bool // the problem is the key itself (a name), not its value
	msg   string
}

type checker struct {
	s                  *Stack
	funcs, apis, plans []string // in the order to check them
}

func errf(path []string, atKey bool, format string, args ...any) *checkErr {
	return &checkErr{path: path, atKey: atKey, msg: fmt.Sprintf(format, args...)}
}

func (c *checker) check() *checkErr {
	s := c.s
	if s.Version != SchemaVersion {
		return errf([]string{"version"}, false, "version %d is not supported; this Gatehouse reads version %d", s.Version, SchemaVersion)
	}
	if !validStackName(s.Name) {
		return errf([]string{"name"}, false, "%s is not a valid stack name: want 1 to 63 lower-case letters, digits and -, starting with a letter or digit", yamlnode.QuoteShort(s.Name))
	}
	if e := checkIAM(s.IAM); e != nil {
		return e
	}
	for _, name := range c.plans {
		if e := checkUsagePlan(name, s.UsagePlans[name]); e != nil {
			return e
		}
	}
	for _, name := range c.funcs {
		if e := checkFunction(name, s.Functions[name]); e != nil {
			return e
		}
	}
	if len(s.APIs) == 0 {
		return errf([]string{"apis"}, true, "stack defines no apis")
	}
	mounts := map[[2]string]string{}
	for _, name := range c.apis {
		api := s.APIs[name]
		if e := c.checkAPI(name, api); e != nil {
			return e
		}
		hm := [2]string{api.Host, api.Mount}
		if other, ok := mounts[hm]; ok {
			where := "any host"
			if api.Host != "" {
				where = "host " + api.Host
			}
			return errf([]string{"apis", name, "mount"}, false, "APIs %s and %s are both mounted at %s on %s; give them different mounts or hosts", other, name, api.Mount, where)
		}
		mounts[hm] = name
	}
	return nil
}

func checkFunction(name string, fn Function) *checkErr {
	path := []string{"functions", name}
	if !validName(name, 64, false) {
		return errf(path, true, "%s is not a valid function name: want 1 to 64 letters, digits, - and _", yamlnode.QuoteShort(name))
	}
	if fn.Name != name {
		return errf(path, true, "Name %q differs from the map key", fn.Name)
	}
	if fn.Source == "" || !filepath.IsAbs(fn.Source) {
		return errf(sub(path, "source"), false, "want an absolute path, got %s", yamlnode.QuoteShort(fn.Source))
	}
	if fn.Kind != SourceGo && fn.Kind != SourceWasm {
		return errf(sub(path, "source"), false, "unknown source kind %v", fn.Kind)
	}
	if fn.MemoryMB < MinMemoryMB || fn.MemoryMB > MaxMemoryMB {
		return errf(sub(path, "memory"), false, "%d is out of range: want %d to %d (MB)", fn.MemoryMB, MinMemoryMB, MaxMemoryMB)
	}
	if fn.Timeout < MinTimeout || fn.Timeout > MaxTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 1ms to 900s", fn.Timeout)
	}
	size := 0
	for _, k := range slices.Sorted(maps.Keys(fn.Environment)) {
		v := fn.Environment[k]
		kp := sub(path, "environment", k)
		switch {
		case !validEnvName(k):
			return errf(kp, true, "not a valid variable name: want letters, digits and _, not starting with a digit")
		case hasPrefixFold(k, "AWS_") || hasPrefixFold(k, "GATEHOUSE_"):
			return errf(kp, true, "names starting with AWS_ or GATEHOUSE_ are reserved: Gatehouse sets them")
		case strings.ContainsRune(v, 0):
			return errf(kp, false, "the value contains a NUL byte")
		}
		size += len(k) + len(v)
	}
	if size > MaxEnvironmentSize {
		return errf(sub(path, "environment"), true, "%s", envSizeMsg(size, false))
	}
	if fn.MaxConcurrency < 0 || fn.MaxConcurrency > MaxMaxConcurrency {
		return errf(sub(path, "maxConcurrency"), false, "%d is out of range: want 0 (unlimited) to %d", fn.MaxConcurrency, MaxMaxConcurrency)
	}
	if fn.MinWarm < 0 || fn.MinWarm > MaxMinWarm {
		return errf(sub(path, "minWarm"), false, "%d is out of range: want 0 to %d", fn.MinWarm, MaxMinWarm)
	}
	if fn.MaxConcurrency > 0 && fn.MinWarm > fn.MaxConcurrency {
		return errf(sub(path, "minWarm"), false, "%d is more than maxConcurrency (%d)", fn.MinWarm, fn.MaxConcurrency)
	}
	if fn.IdleTimeout != 0 && (fn.IdleTimeout < MinIdleTimeout || fn.IdleTimeout > MaxIdleTimeout) {
		return errf(sub(path, "idleTimeout"), false, "%s is out of range: want %s to %s", fn.IdleTimeout, MinIdleTimeout, MaxIdleTimeout)
	}
	return nil
}

func checkIAM(iam IAM) *checkErr {
	path := []string{"iam"}
	if !validRegion(iam.Region) {
		return errf(sub(path, "region"), false, "%s is not a region name: want lower-case letters, digits and -, such as %s (at most %d characters)",
			yamlnode.QuoteShort(iam.Region), DefaultRegion, MaxRegionLength)
	}
	ids := make(map[string]bool, len(iam.AccessKeys))
	for i, k := range iam.AccessKeys {
		kp := sub(path, "accessKeys", index(i))
		// The ID is not quoted: a secret written in the wrong place must not be shown.
		if !validAccessKeyID(k.ID) {
			return errf(sub(kp, "id"), false, "not a valid access key ID: want %d to %d upper-case letters and digits, such as AKIAIOSFODNN7EXAMPLE (the value is not shown)",
				MinAccessKeyIDLength, MaxAccessKeyIDLength)
		}
		if ids[k.ID] {
			return errf(sub(kp, "id"), false, "the access key %s is listed twice", k.ID)
		}
		ids[k.ID] = true
		if msg := checkSecret(k.Secret); msg != "" {
			return errf(sub(kp, "secret"), false, "the secret %s", msg)
		}
	}
	return nil
}

// checkSecret checks a secret access key; the message, which follows "the secret", never quotes it.
func checkSecret(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n < MinSecretLength || n > MaxSecretLength:
		return fmt.Sprintf("has %d characters; want %d to %d (the value is not shown)", n, MinSecretLength, MaxSecretLength)
	case !allIn(s, func(r rune) bool { return r > ' ' && r < 0x7f }):
		return "holds spaces, control or non-ASCII characters; want printable ASCII (the value is not shown)"
	}
	return ""
}

func validAccessKeyID(id string) bool {
	return len(id) >= MinAccessKeyIDLength && len(id) <= MaxAccessKeyIDLength &&
		allIn(id, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' })
}

// validRegion reports whether r looks like a region name: lower-case letters, digits and -,
// starting with a letter and not ending with -.
func validRegion(r string) bool {
	if r == "" || len(r) > MaxRegionLength || r[0] < 'a' || r[0] > 'z' || r[len(r)-1] == '-' {
		return false
	}
	return allIn(r, func(c rune) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' })
}

func envSizeMsg(size int, atLeast bool) string {
	amount := strconv.Itoa(size)
	if atLeast {
		amount = "more than " + strconv.Itoa(MaxEnvironmentSize)
	}
	return fmt.Sprintf("the variables take %s bytes (names and values); the limit is %d (4 KB, as in AWS Lambda)", amount, MaxEnvironmentSize)
}

func (c *checker) checkAPI(name string, api API) *checkErr {
	path := []string{"apis", name}
	if !validName(name, 128, false) {
		return errf(path, true, "%s is not a valid API name: want 1 to 128 letters, digits, - and _", yamlnode.QuoteShort(name))
	}
	if api.Name != name {
		return errf(path, true, "Name %q differs from the map key", api.Name)
	}
	var ws bool
	switch api.Type {
	case APITypeHTTP:
		if api.RouteSelectionExpression != "" {
			return errf(sub(path, "routeSelectionExpression"), true, "%s", onlyWebSocket)
		}
		if api.WebSocket != nil {
			return errf(sub(path, "limits"), true, "%s", onlyWebSocket)
		}
	case APITypeWebSocket:
		ws = true
	default:
		return errf(sub(path, "type"), false, "unknown API type %s: want %q or %q", yamlnode.QuoteShort(api.Type), APITypeHTTP, APITypeWebSocket)
	}
	if msg := checkMount(api.Mount); msg != "" {
		return errf(sub(path, "mount"), false, "%s", msg)
	}
	if msg := checkHost(api.Host); msg != "" {
		return errf(sub(path, "host"), false, "%s", msg)
	}
	if api.CORS != nil {
		if ws {
			return errf(sub(path, "cors"), true, "%s", onlyHTTPCORS)
		}
		if e := checkCORS(sub(path, "cors"), api.CORS); e != nil {
			return e
		}
	}
	for _, an := range slices.Sorted(maps.Keys(api.Authorizers)) {
		if e := c.checkAuthorizer(sub(path, "authorizers", an), an, api.Authorizers[an], ws); e != nil {
			return e
		}
	}
	if len(api.Stages) == 0 {
		return errf(sub(path, "stages"), true, "no stages (omit stages: to get the %s stage)", DefaultStage)
	}
	routeKeys := make([]string, len(api.Routes))
	for i, r := range api.Routes {
		routeKeys[i] = r.Key
	}
	for _, sn := range slices.Sorted(maps.Keys(api.Stages)) {
		if e := checkStage(sub(path, "stages", sn), sn, api.Stages[sn], routeKeys); e != nil {
			return e
		}
	}
	if ws {
		if msg := checkRouteSelection(api.RouteSelectionExpression); msg != "" {
			return errf(sub(path, "routeSelectionExpression"), false, "%s", msg)
		}
		if e := checkWSLimits(sub(path, "limits"), api.WebSocket); e != nil {
			return e
		}
	}
	routesPath := sub(path, "routes")
	if len(api.Routes) == 0 {
		return errf(routesPath, true, "the API has no routes")
	}
	if len(api.Routes) > MaxRoutesPerAPI {
		return errf(routesPath, true, "more than %d routes in one API", MaxRoutesPerAPI)
	}
	keys := make(map[string]bool, len(api.Routes))
	for _, r := range api.Routes {
		rp := sub(routesPath, r.Key)
		if keys[r.Key] {
			return errf(rp, true, "duplicate route")
		}
		keys[r.Key] = true
		if !ws {
			if msg := checkRouteKey(r.Key); msg != "" {
				return errf(rp, true, "%s", msg)
			}
			if r.RouteResponse {
				return errf(sub(rp, "routeResponse"), true, "%s", onlyWebSocket)
			}
		} else {
			if msg := checkWSRouteKey(r.Key); msg != "" {
				return errf(rp, true, "%s", msg)
			}
			if r.RouteResponse && (r.Key == RouteConnect || r.Key == RouteDisconnect) {
				return errf(sub(rp, "routeResponse"), false, "%s routes cannot send a route response: the $connect response decides the handshake, and after $disconnect the client is gone", r.Key)
			}
		}
		if e := c.checkIntegration(sub(rp, "integration"), r.Integration, ws); e != nil {
			return e
		}
		if e := c.checkRouteControls(rp, r, api, ws); e != nil {
			return e
		}
	}
	return nil
}

// checkRouteSelection checks a WebSocket API's route selection expression.
func checkRouteSelection(expr string) string {
	switch expr {
	case RouteSelectionAlwaysDefault:
		return ""
	case RouteDefault:
		return `"$default" is not a route selection expression: write \$default, with the backslash, to send every message to the $default route`
	}
	if rest, ok := strings.CutPrefix(expr, RouteSelectionBodyPrefix); ok {
		valid := true
		for _, name := range strings.Split(rest, ".") {
			valid = valid && validName(name, len(name), true)
		}
		if valid {
			return ""
		}
	}
	return fmt.Sprintf(`%s is not a supported route selection expression: want $request.body.NAME, where NAME is a field of the JSON message (letters, digits and _; nested fields joined by dots, as in $request.body.meta.action), or \$default to send every message to the $default route; composite expressions such as ${request.body.a}/${request.body.b} are not supported`,
		yamlnode.QuoteShort(expr))
}

// checkWSRouteKey checks a WebSocket route key.
func checkWSRouteKey(key string) string {
	predefined := []string{RouteConnect, RouteDisconnect, RouteDefault}
	const want = "a websocket API's route keys are $connect, $disconnect, $default and custom keys, which are matched against the value the routeSelectionExpression picks from each message, such as sendmessage"
	n := utf8.RuneCountInString(key)
	switch {
	case slices.Contains(predefined, key):
		return ""
	case strings.HasPrefix(key, "$"):
		return fmt.Sprintf("unknown predefined route key%s: only $connect, $disconnect and $default may start with $; %s", didyoumean.Suggest(key, predefined), want)
	case checkRouteKey(key) == "":
		return "an http route key in a websocket API; " + want
	case n == 0 || n > MaxWSRouteKeyLength:
		return fmt.Sprintf("a custom route key is 1 to %d characters; %s", MaxWSRouteKeyLength, want)
	case strings.ContainsFunc(key, unicode.IsControl):
		return "a route key must not contain control characters"
	}
	return ""
}

func checkWSLimits(path []string, l *WebSocketLimits) *checkErr {
	if l == nil {
		return errf(path, true, "no limits: a websocket API needs its WebSocket limits (Parse fills the defaults)")
	}
	if l.MaxMessageBytes < MinMaxMessageBytes || l.MaxMessageBytes > MaxMaxMessageBytes {
		return errf(sub(path, "maxMessageBytes"), false, "%d is out of range: want %d (1 KiB) to %d (16 MiB)", l.MaxMessageBytes, MinMaxMessageBytes, MaxMaxMessageBytes)
	}
	if l.MaxFrameBytes < MinMaxFrameBytes || l.MaxFrameBytes > l.MaxMessageBytes {
		return errf(sub(path, "maxFrameBytes"), false, "%d is out of range: want %d (1 KiB) to maxMessageBytes (%d)", l.MaxFrameBytes, MinMaxFrameBytes, l.MaxMessageBytes)
	}
	if l.IdleTimeout < MinWSIdleTimeout || l.IdleTimeout > MaxWSIdleTimeout {
		return errf(sub(path, "idleTimeout"), false, "%v is out of range: want 1s to 2h", l.IdleTimeout)
	}
	if l.MaxConnectionDuration < MinMaxConnectionDuration || l.MaxConnectionDuration > MaxMaxConnectionDuration {
		return errf(sub(path, "maxConnectionDuration"), false, "%v is out of range: want 1s to 24h", l.MaxConnectionDuration)
	}
	if l.SendQueue < MinSendQueue || l.SendQueue > MaxSendQueue {
		return errf(sub(path, "sendQueue"), false, "%d is out of range: want %d to %d (messages)", l.SendQueue, MinSendQueue, MaxSendQueue)
	}
	return nil
}

func checkStage(path []string, name string, st Stage, routeKeys []string) *checkErr {
	if name != DefaultStage && !validName(name, 128, false) {
		return errf(path, true, "%s is not a valid stage name: want %s or 1 to 128 letters, digits, - and _", yamlnode.QuoteShort(name), DefaultStage)
	}
	if st.Name != name {
		return errf(path, true, "Name %q differs from the map key", st.Name)
	}
	if len(st.Variables) > MaxStageVariables {
		return errf(sub(path, "variables"), true, "more than %d variables in one stage", MaxStageVariables)
	}
	for _, k := range slices.Sorted(maps.Keys(st.Variables)) {
		v := st.Variables[k]
		kp := sub(path, "variables", k)
		if !validName(k, 64, true) {
			return errf(kp, true, "not a valid stage variable name: want 1 to 64 letters, digits and _")
		}
		if len(v) == 0 || len(v) > 512 || !allIn(v, isStageValueChar) {
			return errf(kp, false, "%s is not a valid stage variable value: want 1 to 512 of the characters A-Z a-z 0-9 - . _ ~ : / ? # & = ,", yamlnode.QuoteShort(v))
		}
	}
	if st.Throttle != nil {
		if e := checkThrottle(sub(path, "throttle"), *st.Throttle); e != nil {
			return e
		}
	}
	for _, k := range slices.Sorted(maps.Keys(st.RouteThrottles)) {
		kp := sub(path, "routeThrottles", k)
		if !slices.Contains(routeKeys, k) {
			return errf(kp, true, "no route %s in this API%s; routeThrottles are keyed by route key", yamlnode.QuoteShort(k), didyoumean.Suggest(k, routeKeys))
		}
		if e := checkThrottle(kp, st.RouteThrottles[k]); e != nil {
			return e
		}
	}
	return nil
}

func (c *checker) checkIntegration(path []string, in Integration, ws bool) *checkErr {
	if in.Type != IntegrationFunction {
		return errf(sub(path, "type"), false, "integration type %s is not supported: only %q for now", yamlnode.QuoteShort(in.Type), IntegrationFunction)
	}
	if e := c.checkTarget(sub(path, "target"), in.Target); e != nil {
		return e
	}
	if ws {
		if in.PayloadFormatVersion != "" {
			return errf(sub(path, "payloadFormatVersion"), true, "only for http APIs: websocket routes receive WebSocket events; remove it")
		}
		if in.Timeout < MinWSIntegrationTimeout || in.Timeout > MaxWSIntegrationTimeout {
			return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 29s (the limit for websocket APIs)", in.Timeout)
		}
		return nil
	}
	switch in.PayloadFormatVersion {
	case PayloadFormat2:
	case "1.0":
		return errf(sub(path, "payloadFormatVersion"), false, "payload format 1.0 is not supported yet; use %q", PayloadFormat2)
	default:
		return errf(sub(path, "payloadFormatVersion"), false, "unknown payload format version %s: want %q", yamlnode.QuoteShort(in.PayloadFormatVersion), PayloadFormat2)
	}
	if in.Timeout < MinIntegrationTimeout || in.Timeout > MaxIntegrationTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 30s", in.Timeout)
	}
	return nil
}

// checkTarget checks a reference to a function of the stack, optionally qualified.
func (c *checker) checkTarget(path []string, target string) *checkErr {
	name, qualifier, qualified := strings.Cut(target, ":")
	if _, ok := c.s.Functions[name]; !ok {
		return errf(path, false, "no function named %s in functions%s", yamlnode.QuoteShort(name), c.functionList())
	}
	if qualified && !validQualifier(qualifier) {
		return errf(path, false, "%s is not a version or alias of %s: want $LATEST, a version number (3) or an alias name (1 to 128 letters, digits, - and _, not all digits)",
			yamlnode.QuoteShort(qualifier), name)
	}
	return nil
}

// functionList names the defined functions for an unknown-target message.
func (c *checker) functionList() string {
	names := slices.Sorted(maps.Keys(c.s.Functions))
	switch {
	case len(names) == 0:
		return " (it defines none)"
	case len(names) > 10:
		names = append(names[:10], "…")
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

// checkRouteKey checks the shape of a route key; the gateway checks it precisely.
func checkRouteKey(key string) string {
	if key == "$default" {
		return ""
	}
	const want = `want "$default" or "METHOD /path", e.g. "GET /hello" or "ANY /{proxy+}"`
	method, path, ok := strings.Cut(key, " ")
	switch {
	case !ok || method == "":
		return "not a route key: " + want
	case !allIn(method, func(r rune) bool { return r >= 'A' && r <= 'Z' }):
		return fmt.Sprintf("the method %s must be an upper-case word such as GET or ANY; %s", yamlnode.QuoteShort(method), want)
	case !strings.HasPrefix(path, "/"):
		return "the path must start with /; " + want
	case strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "the path must not contain spaces or control characters; " + want
	}
	for _, seg := range strings.Split(path[1:], "/") {
		// Express-style and glob-style parameters are literal text to API Gateway: almost
		// certainly not what was meant.
		if name, ok := strings.CutPrefix(seg, ":"); ok && name != "" {
			return fmt.Sprintf("the segment %s would match only the literal text %q; write a path parameter as {%s}", yamlnode.QuoteShort(seg), seg, strings.TrimSuffix(name, "?"))
		}
		if seg == "*" || seg == "**" {
			return fmt.Sprintf("the segment %s would match only a literal %s; write a greedy path parameter as {proxy+}", yamlnode.QuoteShort(seg), seg)
		}
	}
	return ""
}

func checkMount(m string) string {
	const want = `want "/" or a path of literal segments such as /shop/v1, without a trailing /`
	if m == "/" {
		return ""
	}
	if !strings.HasPrefix(m, "/") || strings.HasSuffix(m, "/") {
		return fmt.Sprintf("%s is not a mount: %s", yamlnode.QuoteShort(m), want)
	}
	for _, seg := range strings.Split(m[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || !allIn(seg, isPathChar) {
			return fmt.Sprintf("%s is not a mount: %s", yamlnode.QuoteShort(m), want)
		}
	}
	return ""
}

func checkHost(h string) string {
	if h == "" {
		return ""
	}
	switch {
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%s: give the host name only, without a scheme", yamlnode.QuoteShort(h))
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%s: give the host name only, without a port", yamlnode.QuoteShort(h))
	case len(h) > 253:
		return "a host name is at most 253 characters"
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			!allIn(label, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' }) {
			return fmt.Sprintf("%s is not a host name: want labels of letters, digits and - separated by dots, e.g. api.example.com", yamlnode.QuoteShort(h))
		}
	}
	return ""
}

func validStackName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' {
		return false
	}
	return allIn(s, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' })
}

// validName reports whether s is 1..maxLen of [A-Za-z0-9_-] (without - when noDash).
func validName(s string, maxLen int, noDash bool) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	return allIn(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || (r == '-' && !noDash)
	})
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return validName(s, len(s), true)
}

func isStageValueChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~:/?#&=,", r)
}

// isPathChar reports RFC 3986 path characters other than % (no percent-encoding in mounts).
func isPathChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~!$&'()*+,;=:@", r)
}

// validQualifier reports whether q can qualify a function name: $LATEST, a version number without a
// leading zero, or an alias name.
func validQualifier(q string) bool {
	switch {
	case q == "$LATEST":
		return true
	case q == "" || len(q) > 128:
		return false
	case allIn(q, func(r rune) bool { return r >= '0' && r <= '9' }):
		return q[0] != '0'
	}
	return allIn(q, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
	})
}

func allIn(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// formatPath writes a key path: plain keys joined with ".", others quoted in brackets, e.g.
// apis.web.routes["GET /hello"].function.
func formatPath(path []string) string {
	var b strings.Builder
	for _, seg := range path {
		if i, ok := strings.CutPrefix(seg, indexMark); ok {
			b.WriteString("[" + i + "]")
			continue
		}
		if validName(seg, len(seg), false) {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(seg)
			continue
		}
		b.WriteString("[" + strconv.Quote(seg) + "]")
	}
	return b.String()
}

// ---------------------------------------------------------------------------------------------
// Checking the gateway controls: usage plans, throttles, CORS, authorizers and what routes ask of
// their callers.

func checkUsagePlan(name string, p UsagePlan) *checkErr {
	path := []string{"usagePlans", name}
	if !validName(name, MaxUsagePlanNameLength, false) {
		return errf(path, true, "%s is not a valid usage plan name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxUsagePlanNameLength)
	}
	if p.Name != name {
		return errf(path, true, "Name %q differs from the map key", p.Name)
	}
	if p.Throttle != nil {
		if e := checkThrottle(sub(path, "throttle"), *p.Throttle); e != nil {
			return e
		}
	}
	if q := p.Quota; q != nil {
		if q.Limit < MinQuotaLimit || q.Limit > MaxQuotaLimit {
			return errf(sub(path, "quota", "limit"), false, "%d is out of range: want %d to %d (requests per period)", q.Limit, MinQuotaLimit, MaxQuotaLimit)
		}
		periods := []string{QuotaPeriodDay, QuotaPeriodWeek, QuotaPeriodMonth}
		if !slices.Contains(periods, q.Period) {
			return errf(sub(path, "quota", "period"), false, "unknown period %s%s: want day, week or month", yamlnode.QuoteShort(q.Period), didyoumean.Suggest(q.Period, periods))
		}
	}
	return nil
}

func checkThrottle(path []string, t Throttle) *checkErr {
	if !(t.Rate > 0 && t.Rate <= MaxThrottleRate) {
		return errf(sub(path, "rate"), false, "%s is out of range: want more than 0, at most %d (requests per second)", strconv.FormatFloat(t.Rate, 'g', -1, 64), MaxThrottleRate)
	}
	if t.Burst < 0 || t.Burst > MaxThrottleBurst {
		return errf(sub(path, "burst"), false, "%d is out of range: want 0 to %d (requests)", t.Burst, MaxThrottleBurst)
	}
	return nil
}

// corsMethods are the methods allowMethods may list, besides CORSWildcard.
var corsMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

func checkCORS(path []string, c *CORS) *checkErr {
	for i, o := range c.AllowOrigins {
		if msg := checkOrigin(o); msg != "" {
			return errf(sub(path, "allowOrigins", index(i)), false, "%s", msg)
		}
	}
	for i, m := range c.AllowMethods {
		if m != CORSWildcard && !slices.Contains(corsMethods, m) {
			return errf(sub(path, "allowMethods", index(i)), false, "%s is not a method%s: want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or *",
				yamlnode.QuoteShort(m), didyoumean.Suggest(m, corsMethods))
		}
	}
	for _, l := range []struct {
		key   string
		names []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range l.names {
			if h != CORSWildcard && !validToken(h) {
				return errf(sub(path, l.key, index(i)), false, "%s is not a header name: want letters, digits and !#$%%&'*+-.^_`|~, or *", yamlnode.QuoteShort(h))
			}
		}
	}
	if c.MaxAge != nil && (*c.MaxAge < MinCORSMaxAge || *c.MaxAge > MaxCORSMaxAge) {
		return errf(sub(path, "maxAge"), false, "%d is out of range: want %d to %d (seconds)", *c.MaxAge, MinCORSMaxAge, MaxCORSMaxAge)
	}
	if c.AllowCredentials && slices.Contains(c.AllowOrigins, CORSWildcard) {
		return errf(sub(path, "allowCredentials"), false, "allowCredentials cannot be used with allowOrigins: * (browsers refuse credentials for any origin, and API Gateway refuses the pair); list the origins instead")
	}
	return nil
}

// checkOrigin checks one entry of allowOrigins.
func checkOrigin(o string) string {
	if o == CORSWildcard {
		return ""
	}
	const want = "want * or scheme://host[:port], such as https://example.com"
	scheme, hostPort, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || hostPort == "" || !validScheme(strings.ToLower(scheme)) {
		return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
	}
	if strings.ContainsAny(hostPort, "/?#") {
		return fmt.Sprintf("%s is not an origin: an origin has no path, not even a trailing /; %s", yamlnode.QuoteShort(o), want)
	}
	host, port := hostPort, ""
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 && !strings.HasSuffix(hostPort, "]") {
		host, port = hostPort[:i], hostPort[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
		}
	}
	lower := strings.ToLower(host)
	if lower == "" || !allIn(lower, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-.[]:", r)
	}) {
		return fmt.Sprintf("%s is not an origin: %s", yamlnode.QuoteShort(o), want)
	}
	if o != strings.ToLower(o) {
		return fmt.Sprintf("%s: write origins in lower case, as browsers send them (%s)", yamlnode.QuoteShort(o), strings.ToLower(o))
	}
	return ""
}

// validScheme reports whether s is a URL scheme: a letter, then letters, digits, +, - and .
func validScheme(s string) bool {
	return s != "" && s[0] >= 'a' && s[0] <= 'z' &&
		allIn(s, func(r rune) bool {
			return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'
		})
}

// validToken reports whether s is an HTTP token (RFC 9110), such as a header name.
func validToken(s string) bool {
	return s != "" && allIn(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
	})
}

// checkKeyURL checks an issuer or JWKS URL: https, or http on the local host; query allowed when
// withQuery.
func checkKeyURL(u string, withQuery bool) bool {
	if strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil || p.Opaque != "" || p.Fragment != "" || (p.RawQuery != "" || p.ForceQuery) && !withQuery {
		return false
	}
	switch p.Scheme {
	case "https":
		return true
	case "http":
		h := p.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

func (c *checker) checkAuthorizer(path []string, name string, a Authorizer, ws bool) *checkErr {
	if !validName(name, MaxAuthorizerNameLength, false) {
		return errf(path, true, "%s is not a valid authorizer name: want 1 to %d letters, digits, - and _", yamlnode.QuoteShort(name), MaxAuthorizerNameLength)
	}
	if a.Name != name {
		return errf(path, true, "Name %q differs from the map key", a.Name)
	}
	switch a.Type {
	case AuthorizerJWT:
		if ws {
			return errf(sub(path, "type"), false, "jwt authorizers are only for http APIs: a websocket API authorizes $connect with a function authorizer or iam")
		}
		if a.JWT == nil || a.Function != nil {
			return errf(path, true, "a jwt authorizer needs its JWT settings, and no Function settings")
		}
		return checkJWTAuthorizer(path, a.JWT)
	case AuthorizerFunction:
		if a.Function == nil || a.JWT != nil {
			return errf(path, true, "a function authorizer needs its Function settings, and no JWT settings")
		}
		return c.checkFunctionAuthorizer(path, a.Function)
	}
	return errf(sub(path, "type"), false, "unknown authorizer type %s: want %q or %q", yamlnode.QuoteShort(a.Type), AuthorizerJWT, AuthorizerFunction)
}

func checkJWTAuthorizer(path []string, j *JWTAuthorizer) *checkErr {
	const local = "(http:// only for localhost, 127.0.0.1 and [::1])"
	if !checkKeyURL(j.Issuer, false) {
		return errf(sub(path, "issuer"), false, "%s is not an issuer URL: want https://HOST or https://HOST/PATH, without a query %s", yamlnode.QuoteShort(j.Issuer), local)
	}
	if n := len(j.Audiences); n < 1 || n > MaxJWTAudiences {
		return errf(sub(path, "audiences"), false, "%d audiences; want 1 to %d", n, MaxJWTAudiences)
	}
	for i, a := range j.Audiences {
		if strings.TrimSpace(a) == "" {
			return errf(sub(path, "audiences", index(i)), false, "an audience must not be empty")
		}
	}
	if !strings.HasPrefix(j.IdentitySource, IdentitySourceHeader) && !strings.HasPrefix(j.IdentitySource, IdentitySourceQuery) || checkIdentitySource(j.IdentitySource) != "" {
		return errf(sub(path, "identitySource"), false, "%s is not an identity source for a jwt authorizer: want $request.header.NAME (default %s) or $request.querystring.NAME",
			yamlnode.QuoteShort(j.IdentitySource), DefaultJWTIdentitySource)
	}
	if j.JWKSURL != "" && j.JWKSFile != "" {
		return errf(sub(path, "jwksFile"), true, "give either jwksUrl or jwksFile, not both")
	}
	if j.JWKSURL != "" && !checkKeyURL(j.JWKSURL, true) {
		return errf(sub(path, "jwksUrl"), false, "%s is not a JWKS URL: want https://HOST/PATH %s", yamlnode.QuoteShort(j.JWKSURL), local)
	}
	if j.JWKSFile != "" && !filepath.IsAbs(j.JWKSFile) {
		return errf(sub(path, "jwksFile"), false, "want an absolute path, got %s", yamlnode.QuoteShort(j.JWKSFile))
	}
	if len(j.Algorithms) == 0 {
		return errf(sub(path, "algorithms"), false, "no algorithms; list at least one, or omit algorithms for the default %s", strings.Join(DefaultJWTAlgorithms(), ", "))
	}
	const want = "want RS256, RS384, RS512, ES256, ES384 or EdDSA"
	for i, alg := range j.Algorithms {
		ap := sub(path, "algorithms", index(i))
		switch {
		case slices.Contains(jwtAlgorithms, alg):
		case strings.EqualFold(alg, "none"):
			return errf(ap, false, "unsigned tokens (none) are never accepted; %s", want)
		case hasPrefixFold(alg, "HS"):
			return errf(ap, false, "%s is never accepted: HMAC tokens are signed with a shared secret, not a published key; %s", yamlnode.QuoteShort(alg), want)
		default:
			return errf(ap, false, "%s is not a supported algorithm%s; %s", yamlnode.QuoteShort(alg), didyoumean.Suggest(alg, jwtAlgorithms), want)
		}
	}
	if j.Skew < 0 || j.Skew > MaxJWTSkew {
		return errf(sub(path, "skew"), false, "%v is out of range: want 0s to 5m", j.Skew)
	}
	return nil
}

func (c *checker) checkFunctionAuthorizer(path []string, a *FunctionAuthorizer) *checkErr {
	if e := c.checkTarget(sub(path, "function"), a.Function); e != nil {
		return e
	}
	if n := len(a.IdentitySources); n < 1 || n > MaxIdentitySources {
		return errf(sub(path, "identitySources"), false, "%d identity sources; want 1 to %d", n, MaxIdentitySources)
	}
	for i, src := range a.IdentitySources {
		if msg := checkIdentitySource(src); msg != "" {
			return errf(sub(path, "identitySources", index(i)), false, "%s", msg)
		}
	}
	if a.ResultTTL < 0 || a.ResultTTL > MaxAuthorizerResultTTL {
		return errf(sub(path, "resultTtl"), false, "%v is out of range: want 0s (no caching) to 1h", a.ResultTTL)
	}
	if a.Timeout < MinAuthorizerTimeout || a.Timeout > MaxAuthorizerTimeout {
		return errf(sub(path, "timeout"), false, "%v is out of range: want 50ms to 10s", a.Timeout)
	}
	return nil
}

// checkIdentitySource checks an identity source: a prefix and a name.
func checkIdentitySource(src string) string {
	const want = "want $request.header.NAME, $request.querystring.NAME, $context.NAME or $stageVariables.NAME"
	if rest, ok := strings.CutPrefix(src, "route.request."); ok {
		return fmt.Sprintf("%s is API Gateway's websocket form; Gatehouse writes identity sources the same way in every API: $request.%s", yamlnode.QuoteShort(src), rest)
	}
	var valid bool
	switch {
	case strings.HasPrefix(src, IdentitySourceHeader):
		valid = validToken(src[len(IdentitySourceHeader):])
	case strings.HasPrefix(src, IdentitySourceQuery):
		name := src[len(IdentitySourceQuery):]
		valid = name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '&' || r == '=' || r == '#' })
	case strings.HasPrefix(src, IdentitySourceContext):
		valid = true
		for _, part := range strings.Split(src[len(IdentitySourceContext):], ".") {
			valid = valid && validName(part, len(part), true)
		}
	case strings.HasPrefix(src, IdentitySourceStageVariable):
		valid = validName(src[len(IdentitySourceStageVariable):], 64, true)
	}
	if !valid {
		return fmt.Sprintf("%s is not an identity source: %s", yamlnode.QuoteShort(src), want)
	}
	return ""
}

// checkRouteControls checks a route's authorization and apiKeyRequired.
func (c *checker) checkRouteControls(rp []string, r Route, api API, ws bool) *checkErr {
	a := r.Authorization
	ap := sub(rp, "authorization")
	types := []string{AuthNone, AuthJWT, AuthFunction, AuthIAM}
	if !slices.Contains(types, a.Type) {
		return errf(sub(ap, "type"), false, "unknown authorization type %s%s: want none, jwt, function or iam", yamlnode.QuoteShort(a.Type), didyoumean.Suggest(a.Type, types))
	}
	if ws && a.Type != AuthNone && r.Key != RouteConnect {
		return errf(ap, true, "only on the $connect route: a websocket API authorizes a client once, when it connects")
	}
	if ws && a.Type == AuthJWT {
		return errf(sub(ap, "type"), false, "jwt authorization is only for http APIs: a websocket API authorizes $connect with type function or iam")
	}
	if len(a.Scopes) > 0 && a.Type != AuthJWT {
		return errf(sub(ap, "scopes"), true, "scopes are only for type jwt; this route has type %s", a.Type)
	}
	switch a.Type {
	case AuthNone, AuthIAM:
		if a.Authorizer != "" {
			return errf(sub(ap, "authorizer"), true, "only for type jwt or function; a route with type %s has no authorizer", a.Type)
		}
	case AuthJWT, AuthFunction:
		names := slices.Sorted(maps.Keys(api.Authorizers))
		var of []string
		for _, n := range names {
			if api.Authorizers[n].Type == a.Type {
				of = append(of, n)
			}
		}
		available := fmt.Sprintf("this API has no %s authorizer", a.Type)
		if len(of) > 0 {
			available = fmt.Sprintf("this API's %s authorizers: %s", a.Type, strings.Join(of, ", "))
		}
		if a.Authorizer == "" {
			return errf(sub(ap, "authorizer"), false, "required: the name of a %s authorizer (%s)", a.Type, available)
		}
		az, ok := api.Authorizers[a.Authorizer]
		if !ok {
			hint := didyoumean.Suggest(a.Authorizer, names)
			if hint == "" {
				hint = " (" + available + ")"
			}
			return errf(sub(ap, "authorizer"), false, "no authorizer named %s in apis.%s.authorizers%s", yamlnode.QuoteShort(a.Authorizer), api.Name, hint)
		}
		if az.Type != a.Type {
			return errf(sub(ap, "authorizer"), false, "the authorizer %s has type %s; authorization type %s needs a %s authorizer (%s)",
				a.Authorizer, az.Type, a.Type, a.Type, available)
		}
	}
	if n := len(a.Scopes); n > MaxAuthorizationScopes {
		return errf(sub(ap, "scopes"), false, "%d scopes; at most %d", n, MaxAuthorizationScopes)
	}
	for i, sc := range a.Scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return errf(sub(ap, "scopes", index(i)), false, "%s is not a scope: want a non-empty string without spaces", yamlnode.QuoteShort(sc))
		}
	}
	if r.APIKeyRequired {
		if ws && r.Key != RouteConnect {
			return errf(sub(rp, "apiKeyRequired"), false, "only on the $connect route: a websocket API checks the API key once, when a client connects")
		}
		if len(c.s.UsagePlans) == 0 {
			return errf(sub(rp, "apiKeyRequired"), false, "API keys belong to usage plans, and the stack has none: add a top-level usagePlans section, then create keys with gatehouse keys create --plan NAME")
		}
	}
	return nil
}
