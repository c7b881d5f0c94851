// Package spec is the one model of a Gatehouse stack: its functions and its APIs (stages, routes,
// integrations, authorizers, CORS, usage plans, access keys) as versioned, JSON-tagged types, with
// [Stack.Validate] and [API.Validate] as the one place where every rule and limit lives.
//
// Every format that describes a stack decodes into these types: the stack file (internal/stackfile),
// the admin API's API definitions, and stored records. Encoded as JSON, the types use the stack
// file's own keys, so what the admin API returns can be applied again as it is.
//
// spec is the lowest layer: it imports nothing of Gatehouse but small helpers.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Stack is a parsed and validated stack file. [Parse] fills every default, so no field holds a
// zero value that stands for "use the default"; where zero has a meaning (MaxConcurrency 0 is
// unlimited, Host "" is any host) it is documented on the field.
type Stack struct {
	// Version is the schema version (`version:`, required); always SchemaVersion.
	Version int `json:"version"`
	// Name is the stack name (`name:`, default DefaultStackName): [a-z0-9][a-z0-9-]{0,62}. It
	// prefixes bus subjects, buckets and keys.
	Name string `json:"name"`
	// Dir is the absolute directory of the stack file; relative paths in the file are resolved
	// against it. Not read from YAML.
	Dir string `json:"-"`
	// File is the path of the stack file as given to Load (the name given to Parse). Not read
	// from YAML.
	File string `json:"-"`
	// Functions are the functions of the stack (`functions:`), by name.
	Functions map[string]Function `json:"functions,omitempty"`
	// APIs are the APIs of the stack (`apis:`), by name; at least one.
	APIs map[string]API `json:"apis"`
	// IAM holds the access keys of the stack (`iam:`).
	IAM IAM `json:"iam"`
	// UsagePlans are the usage plans of the stack (`usagePlans:`), by name; nil when there are
	// none. API keys, which routes with APIKeyRequired ask for, each belong to one plan; they are
	// made with `gatehouse keys create --plan NAME`, not written in the stack file. A plan applies
	// to every API and stage of the stack.
	UsagePlans map[string]UsagePlan `json:"usagePlans,omitempty"`
	// Domains are the custom domain names the gateway serves over TLS (`domains:`), by name; nil
	// when there are none.
	Domains map[string]Domain `json:"domains,omitempty"`
}

// UsagePlan is one entry of `usagePlans:`.
type UsagePlan struct {
	// Name is the map key: [A-Za-z0-9_-]{1,MaxUsagePlanNameLength}.
	Name string `json:"-"`
	// Throttle limits the requests of each key of the plan (`throttle:`); nil for no limit of the
	// plan's own.
	Throttle *Throttle `json:"throttle,omitempty"`
	// Quota caps the requests of each key of the plan per period (`quota:`); nil for no quota.
	Quota *Quota `json:"quota,omitempty"`
}

// Throttle is a token bucket (`throttle:`, or an entry of a stage's `routeThrottles:`): it holds
// up to Burst requests and refills at Rate requests per second; a request that finds it empty is
// refused with 429. Each gateway node keeps its own buckets.
type Throttle struct {
	// Rate is the steady rate in requests per second (`rate:`, required): more than 0, at most
	// MaxThrottleRate.
	Rate float64 `json:"rate"`
	// Burst is the bucket's capacity in requests (`burst:`, required): 0..MaxThrottleBurst.
	Burst int `json:"burst"`
}

// Quota is a usage plan's `quota:`.
type Quota struct {
	// Limit is the number of requests each key may make per period (`limit:`, required):
	// MinQuotaLimit..MaxQuotaLimit.
	Limit int `json:"limit"`
	// Period is QuotaPeriodDay, QuotaPeriodWeek or QuotaPeriodMonth (`period:`, required).
	Period string `json:"period"`
}

// IAM is the stack's `iam:` section: the access keys that may sign requests to the stack's
// management endpoints, such as a WebSocket API's @connections, with AWS Signature Version 4.
type IAM struct {
	// Region is the region requests are signed for (`region:`, default DefaultRegion): lower-case
	// letters, digits and -, at most MaxRegionLength characters, such as "eu-west-1".
	Region string `json:"region"`
	// AccountID is the account the stack's ARNs and events name (`accountId:`, default
	// DefaultAccountID): twelve digits.
	AccountID string `json:"accountId"`
	// AccessKeys are the access keys (`accessKeys:`) in file order; nil when there are none.
	// Their IDs are distinct.
	AccessKeys []AccessKey `json:"accessKeys,omitempty"`
}

// AccessKey is one entry of `iam.accessKeys:`.
type AccessKey struct {
	// ID is the access key ID (`id:`, required): MinAccessKeyIDLength..MaxAccessKeyIDLength
	// upper-case letters and digits, such as "AKIAIOSFODNN7EXAMPLE".
	ID string `json:"id"`
	// Secret is the secret access key: from `secret:`, or the value of the environment variable
	// named by `secretFromEnv:`, read by Parse. MinSecretLength..MaxSecretLength printable ASCII
	// characters without spaces. It never appears in an error message.
	Secret string `json:"-"`
}

// String returns the key's ID without the secret, so that printing an AccessKey (or a Stack) with
// %v or %s never shows the secret.
func (k AccessKey) String() string { return "{ID:" + k.ID + " Secret:<hidden>}" }

// GoString is String for %#v.
func (k AccessKey) GoString() string {
	return "spec.AccessKey{ID:" + strconv.Quote(k.ID) + ", Secret:<hidden>}"
}

// Function is one entry of `functions:`.
type Function struct {
	// Name is the map key: [A-Za-z0-9_-]{1,64}, as a Lambda function name.
	Name string `json:"-"`
	// Line and Column are the position of the function's key in the stack file (0 when not read
	// from a file), for later error messages.
	Line, Column int `json:"-"`
	// Source is the absolute, cleaned path of the Go source directory or .wasm file (`source:`,
	// required; relative to the stack file's directory).
	Source string `json:"source"`
	// Kind says what Source is; decided by statting it.
	Kind SourceKind `json:"kind"`
	// FunctionSettings are the function's memory, timeout, environment and concurrency
	// (`memory:`, `timeout:`, `environment:`, `maxConcurrency:`, `minWarm:`, `idleTimeout:`),
	// every default filled; Environment is never nil.
	FunctionSettings
	// Schedules run the function on schedules (`schedules:`), at most MaxSchedules; nil for none.
	Schedules []Schedule `json:"schedules,omitempty"`
	// Events feed the function with messages of the stack's subjects (`events:`), at most
	// MaxEventSources; nil for none.
	Events []EventSource `json:"events,omitempty"`
}

// SourceKind says what a function's source is.
type SourceKind int

const (
	// SourceGo is a directory of Go source, built to WebAssembly by Gatehouse.
	SourceGo SourceKind = iota + 1
	// SourceWasm is a regular file whose name ends in ".wasm".
	SourceWasm
	// SourceZip is a regular file whose name ends in ".zip": a process runtime's deployment
	// package, as Lambda takes them (code at the root). A process runtime's directory is SourceGo.
	SourceZip
)

// String returns "go" or "wasm".
func (k SourceKind) String() string {
	switch k {
	case SourceGo:
		return "go"
	case SourceWasm:
		return "wasm"
	case SourceZip:
		return "zip"
	}
	return "SourceKind(" + strconv.Itoa(int(k)) + ")"
}

// API is one entry of `apis:`.
type API struct {
	// Name is the map key: [A-Za-z0-9_-]{1,128}.
	Name string `json:"-"`
	// Type is the API type (`type:`, required): APITypeHTTP, APITypeREST or APITypeWebSocket.
	Type string `json:"type"`
	// Mount is the path prefix the API is served under (`mount:`, default DefaultMount): "/" or
	// literal segments such as "/shop/v1", without a trailing "/".
	Mount string `json:"mount,omitempty"`
	// Host is the lower-cased host name the API answers for (`host:`); "" (the default) is any
	// host.
	Host string `json:"host,omitempty"`
	// Stages are the API's stages (`stages:`), by name; never empty: the default is a single
	// stage named DefaultStage without variables.
	Stages map[string]Stage `json:"stages"`
	// Routes are the API's routes (`routes:`) in file order; at least one, at most
	// MaxRoutesPerAPI.
	Routes Routes `json:"routes"`
	// RouteSelectionExpression picks the route of each message of a WebSocket API
	// (`routeSelectionExpression:`, default DefaultRouteSelectionExpression):
	// RouteSelectionBodyPrefix followed by dot-separated names of letters, digits and _ (such as
	// "$request.body.action" or "$request.body.meta.type"), or RouteSelectionAlwaysDefault. "" for
	// HTTP APIs.
	RouteSelectionExpression string `json:"routeSelectionExpression,omitempty"`
	// WebSocket holds the connection limits of a WebSocket API (`limits:`), every default filled;
	// nil for HTTP APIs.
	WebSocket *WebSocketLimits `json:"limits,omitempty"`
	// CORS is the CORS configuration of an HTTP API (`cors:`); nil when there is none, and always
	// for WebSocket APIs.
	CORS *CORS `json:"cors,omitempty"`
	// Authorizers are the API's authorizers (`authorizers:`), by name; nil when there are none.
	// WebSocket APIs have function authorizers only; REST APIs have token and request ones.
	Authorizers map[string]Authorizer `json:"authorizers,omitempty"`
	// BinaryMediaTypes are the media types a REST API treats as binary (`binaryMediaTypes:`):
	// such request bodies reach functions base64-encoded, and functions' base64 bodies of such
	// types reach clients decoded. "type/subtype", with "*" for any part ("image/*", "*/*"); at
	// most MaxBinaryMediaTypes. nil for none, and for other API types.
	BinaryMediaTypes []string `json:"binaryMediaTypes,omitempty"`
	// MinimumCompressionSize turns on compression of a REST API's responses
	// (`minimumCompressionSize:`, bytes, 0..MaxMinimumCompressionSize): a response body of at
	// least this size is compressed with gzip or deflate when the client accepts it. nil: never.
	MinimumCompressionSize *int `json:"minimumCompressionSize,omitempty"`
	// Models are a REST API's models (`models:`), by name ([A-Za-z0-9]{1,128}): JSON Schema
	// documents (draft 4 unless they say otherwise) that routes validate request bodies with.
	Models map[string]Model `json:"models,omitempty"`
	// GatewayResponses customise the answers a REST API's gateway makes itself
	// (`gatewayResponses:`), by response type (GatewayResponseTypes: DEFAULT_4XX, UNAUTHORIZED,
	// …). nil when none.
	GatewayResponses map[string]GatewayResponse `json:"gatewayResponses,omitempty"`
	// ResourcePolicy limits who may call an HTTP or REST API (`resourcePolicy:`, an IAM policy
	// document written in YAML or JSON), evaluated before authorizers: see internal/respolicy for
	// what it can say. nil for none.
	ResourcePolicy json.RawMessage `json:"resourcePolicy,omitempty"`
	// DisableExecuteAPIEndpoint makes the API answer only through the custom domains that map it
	// (`disableExecuteApiEndpoint:`, default false), not at its mount or its id's endpoint.
	DisableExecuteAPIEndpoint bool `json:"disableExecuteApiEndpoint,omitempty"`
}

// Model is one entry of a REST API's `models:`.
type Model struct {
	// Schema is the JSON Schema (`schema:`, required, a mapping written in YAML or JSON), at most
	// MaxModelBytes once encoded.
	Schema json.RawMessage `json:"schema"`
}

// GatewayResponse is one entry of a REST API's `gatewayResponses:`: what the gateway answers
// for one type of its own responses.
type GatewayResponse struct {
	// StatusCode replaces the response's status (`statusCode:`, 100..599); 0 keeps it.
	StatusCode int `json:"statusCode,omitempty"`
	// Headers are added to the response (`headers:`); their values are templates as Body is.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the response's body (`body:`), a template that may use $context.* (such as
	// $context.error.messageString, quoted, and $context.error.validationErrorString) and
	// $stageVariables.*; "" keeps the default {"message":$context.error.messageString}.
	Body string `json:"body,omitempty"`
}

// CORS is an HTTP API's `cors:`. The gateway answers CORS preflight requests itself and adds the
// CORS response headers to other responses. Empty lists are nil.
type CORS struct {
	// AllowOrigins are the origins allowed (`allowOrigins:`): CORSWildcard or lower-case origins
	// such as "https://example.com" (scheme, host and optional port; no path).
	AllowOrigins []string `json:"allowOrigins,omitempty"`
	// AllowMethods are the methods allowed (`allowMethods:`): GET, POST, PUT, PATCH, DELETE, HEAD,
	// OPTIONS or CORSWildcard.
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders are the request headers allowed (`allowHeaders:`): header names, as written,
	// or CORSWildcard.
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders are the response headers exposed to scripts (`exposeHeaders:`): header names,
	// as written, or CORSWildcard.
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer, in seconds (`maxAge:`),
	// MinCORSMaxAge..MaxCORSMaxAge; nil (the default) sends no access-control-max-age header.
	MaxAge *int `json:"maxAge,omitempty"`
	// AllowCredentials lets browsers send credentials (`allowCredentials:`, default false); not
	// with CORSWildcard in AllowOrigins.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
}

// Authorizer is one entry of an API's `authorizers:`. Exactly one of JWT and Function is set,
// the one Type names.
type Authorizer struct {
	// Name is the map key: [A-Za-z0-9_-]{1,MaxAuthorizerNameLength}. Routes refer to it.
	Name string `json:"-"`
	// Type is AuthorizerJWT or AuthorizerFunction (`type:`, required). WebSocket APIs have
	// function authorizers only.
	Type string `json:"type"`
	// JWT holds the settings of a JWT authorizer; nil for other types.
	JWT *JWTAuthorizer `json:"-"`
	// Function holds the settings of a function authorizer; nil for other types.
	Function *FunctionAuthorizer `json:"-"`
}

// JWTAuthorizer is the settings of an authorizer of type jwt: it accepts requests that carry a
// valid JSON Web Token from Issuer for one of Audiences.
type JWTAuthorizer struct {
	// Issuer is the token issuer (`issuer:`, required), compared with the iss claim: an https
	// URL, or http for localhost, 127.0.0.1 and [::1] (for tests).
	Issuer string `json:"issuer"`
	// Audiences are the accepted audiences (`audiences:`, required): 1..MaxJWTAudiences non-empty
	// strings, compared with the aud or client_id claim.
	Audiences []string `json:"audiences"`
	// IdentitySource is where the token is (`identitySource:`, default
	// DefaultJWTIdentitySource): IdentitySourceHeader or IdentitySourceQuery followed by a name.
	// A "Bearer " prefix on the value is removed.
	IdentitySource string `json:"identitySource"`
	// JWKSURL is where the signing keys are fetched (`jwksUrl:`), with the same rule as Issuer
	// (a query is allowed); "" when not set.
	JWKSURL string `json:"jwksUrl,omitempty"`
	// JWKSFile is the absolute path of a file holding the signing keys as a JSON Web Key Set
	// (`jwksFile:`, relative to the stack file's directory, must exist); "" when not set. At most
	// one of JWKSURL and JWKSFile is set; with neither, the keys are found by OpenID Connect
	// discovery from Issuer.
	JWKSFile string `json:"jwksFile,omitempty"`
	// Algorithms are the signature algorithms accepted (`algorithms:`, default
	// DefaultJWTAlgorithms()): some of JWTAlgRS256, JWTAlgRS384, JWTAlgRS512, JWTAlgES256,
	// JWTAlgES384 and JWTAlgEdDSA; never HMAC or none.
	Algorithms []string `json:"algorithms"`
	// Skew is the clock difference tolerated when checking exp, nbf and iat (`skew:`),
	// 0..MaxJWTSkew, default DefaultJWTSkew.
	Skew Duration `json:"skew"`
}

// FunctionAuthorizer is the settings of an authorizer of type function: a function of the stack
// decides, from the identity sources and the request, whether the request may go on.
type FunctionAuthorizer struct {
	// Function is the function that decides (`function:`, required): a function of the stack,
	// optionally qualified as an integration target.
	Function string `json:"function"`
	// IdentitySources are the request values the decision depends on (`identitySources:`,
	// required): 1..MaxIdentitySources of IdentitySourceHeader, IdentitySourceQuery,
	// IdentitySourceContext or IdentitySourceStageVariable followed by a name. A request that
	// lacks one is refused with 401 without calling the function; cached results are keyed on
	// their values.
	IdentitySources []string `json:"identitySources"`
	// ResultTTL is how long a decision is cached (`resultTtl:`), 0..MaxAuthorizerResultTTL,
	// default DefaultAuthorizerResultTTL (0: not cached).
	ResultTTL Duration `json:"resultTtl"`
	// SimpleResponses says the function answers {"isAuthorized": BOOL, "context": {…}} (`simpleResponses:`,
	// default DefaultSimpleResponses); false: it answers with an IAM policy document. Always
	// false for a REST API's token and request authorizers.
	SimpleResponses bool `json:"simpleResponses"`
	// IdentityValidationExpression is a regular expression a token authorizer's token must match
	// (`identityValidationExpression:`); a token that does not is refused with 401 without
	// calling the function. "" for none, and for other types.
	IdentityValidationExpression string `json:"identityValidationExpression,omitempty"`
	// Timeout bounds one call of the function (`timeout:`),
	// MinAuthorizerTimeout..MaxAuthorizerTimeout, default DefaultAuthorizerTimeout.
	Timeout Duration `json:"timeout"`
}

// WebSocketLimits is a WebSocket API's `limits:`.
type WebSocketLimits struct {
	// MaxMessageBytes is the largest message a client may send, in bytes (`maxMessageBytes:`),
	// MinMaxMessageBytes..MaxMaxMessageBytes, default DefaultMaxMessageBytes.
	MaxMessageBytes int `json:"maxMessageBytes"`
	// MaxFrameBytes is the largest frame a client may send, in bytes (`maxFrameBytes:`),
	// MinMaxFrameBytes..MaxMessageBytes, default the smaller of DefaultMaxFrameBytes and
	// MaxMessageBytes.
	MaxFrameBytes int `json:"maxFrameBytes"`
	// IdleTimeout is how long a connection may carry no message before it is closed
	// (`idleTimeout:`), MinWSIdleTimeout..MaxWSIdleTimeout, default DefaultWSIdleTimeout.
	IdleTimeout Duration `json:"idleTimeout"`
	// MaxConnectionDuration is how long a connection may stay open (`maxConnectionDuration:`),
	// MinMaxConnectionDuration..MaxMaxConnectionDuration, default DefaultMaxConnectionDuration.
	MaxConnectionDuration Duration `json:"maxConnectionDuration"`
	// SendQueue is the number of messages queued for one connection before a client that does not
	// read them fast enough is disconnected (`sendQueue:`), MinSendQueue..MaxSendQueue, default
	// DefaultSendQueue.
	SendQueue int `json:"sendQueue"`
}

// Stage is one entry of an API's `stages:`.
type Stage struct {
	// Name is the map key: DefaultStage or [A-Za-z0-9_-]{1,128}.
	Name string `json:"-"`
	// Variables are the stage variables (`variables:`); never nil. At most MaxStageVariables;
	// names [A-Za-z0-9_]{1,64}, values [A-Za-z0-9-._~:/?#&=,]{1,512}.
	Variables map[string]string `json:"variables,omitempty"`
	// Throttle is the throttle of every route of the stage (`throttle:`); nil for none.
	Throttle *Throttle `json:"throttle,omitempty"`
	// RouteThrottles are throttles for single routes that replace Throttle for them
	// (`routeThrottles:`), by route key, each a key of one of the API's routes; nil when there are
	// none.
	RouteThrottles map[string]Throttle `json:"routeThrottles,omitempty"`
	// AccessLog is the stage's access log (`accessLog:`); nil for none.
	AccessLog *AccessLog `json:"accessLog,omitempty"`
	// Cache is a REST API stage's response cache (`cache:`); nil for none.
	Cache *StageCache `json:"cache,omitempty"`
}

// StageCache is a REST API stage's `cache:`: responses of the routes that cache (by default its
// GET routes) are kept in the gateway's memory and answered from there until their TTL passes.
type StageCache struct {
	// SizeMB is the cache's capacity in MB (`sizeMB:`, required), MinCacheSizeMB..MaxCacheSizeMB;
	// each gateway node keeps its own, in its memory.
	SizeMB float64 `json:"sizeMB"`
	// TTL is how long a response is kept (`ttl:`, 0..MaxCacheTTL, default DefaultCacheTTL).
	TTL Duration `json:"ttl"`
	// RequireAuthorization says a client's `Cache-Control: max-age=0` refreshes an entry only
	// when the request is signed by one of the stack's access keys (`requireAuthorization:`,
	// default true), as API Gateway asks for execute-api:InvalidateCache; other such requests
	// are answered from the cache.
	RequireAuthorization bool `json:"requireAuthorization"`
}

// Route is one entry of an API's `routes:`.
type Route struct {
	// Key is the map key. In an HTTP API: "$default" or "METHOD /path"; only its shape is checked
	// here (upper-case method word, one space, a path starting with "/"), the gateway checks it
	// precisely. In a WebSocket API: RouteConnect, RouteDisconnect, RouteDefault or a custom key of
	// 1..MaxWSRouteKeyLength characters that does not start with "$".
	Key string `json:"-"`
	// Integration is where the route sends requests.
	Integration Integration `json:"integration"`
	// RouteResponse makes a WebSocket route two-way (`routeResponse:`, default false): the body of
	// the function's response is sent back to the client that sent the message. Always false in
	// HTTP APIs and on the $connect and $disconnect routes.
	RouteResponse bool `json:"routeResponse,omitempty"`
	// Authorization says who may call the route (`authorization:`).
	Authorization Authorization `json:"authorization"`
	// APIKeyRequired makes the route ask for an API key of one of UsagePlans in the APIKeyHeader
	// header (`apiKeyRequired:`, default false). In WebSocket APIs, only on RouteConnect.
	APIKeyRequired bool `json:"apiKeyRequired,omitempty"`
	// Request is how a REST API route validates requests (`request:`); nil for no validation.
	Request *RequestValidation `json:"request,omitempty"`
	// Cache is how a REST API route uses its stage's cache (`cache:`); nil for the default: GET
	// routes cache, keyed by their path parameters, for the stage's TTL.
	Cache *RouteCache `json:"cache,omitempty"`
	// Line and Column are the position of the route key in the stack file (0 when not read from a
	// file), for later error messages.
	Line, Column int `json:"-"`
}

// RequestValidation is a REST API route's `request:`.
type RequestValidation struct {
	// Parameters are the request parameters the route knows (`parameters:`), as
	// "querystring.NAME", "header.NAME" or "path.NAME", each true when required.
	Parameters map[string]bool `json:"parameters,omitempty"`
	// Models name the model a request body of each content type must match (`models:`, such as
	// {application/json: Pet}); a model of the API.
	Models map[string]string `json:"models,omitempty"`
	// ValidateBody checks the body against Models (`validateBody:`, default true when Models are
	// given); a body that does not match is refused with 400 {"message": "Invalid request body"}.
	ValidateBody bool `json:"validateBody"`
	// ValidateParameters checks that the required Parameters are there (`validateParameters:`,
	// default true when one is required); a request without them is refused with 400.
	ValidateParameters bool `json:"validateParameters"`
}

// RouteCache is a REST API route's `cache:`.
type RouteCache struct {
	// Enabled says the route's responses are cached (`enabled:`, default true).
	Enabled bool `json:"enabled"`
	// TTL replaces the stage's TTL for this route (`ttl:`, 0..MaxCacheTTL); nil keeps it.
	TTL *Duration `json:"ttl,omitempty"`
	// Keys are the request parameters the cache tells responses apart by (`keys:`), as
	// "querystring.NAME", "header.NAME" or "path.NAME"; nil for the route's path parameters.
	Keys []string `json:"keys,omitempty"`
}

// Authorization is a route's `authorization:`. In WebSocket APIs only the RouteConnect route may
// have one, of type AuthFunction or AuthIAM.
type Authorization struct {
	// Type is AuthNone (`type:`, the default), AuthJWT, AuthFunction or AuthIAM. AuthIAM asks for
	// requests signed with AWS Signature Version 4 by one of the stack's access keys.
	Type string `json:"type"`
	// Authorizer is the name of an authorizer of the API whose type is Type (`authorizer:`):
	// required for AuthJWT and AuthFunction, "" otherwise.
	Authorizer string `json:"authorizer,omitempty"`
	// Scopes are the scopes a token must have at least one of (`scopes:`): up to
	// MaxAuthorizationScopes, for AuthJWT only; nil when none.
	Scopes []string `json:"scopes,omitempty"`
}

// Integration is a route's target: from the shorthand `function: NAME` (with an optional
// `timeout:` beside it) or from `integration: {type, target, …}`.
type Integration struct {
	// Type is IntegrationFunction (`type:`, the default), IntegrationHTTPProxy (an HTTP backend,
	// HTTP APIs only) or IntegrationMock (an answer made by the gateway, HTTP APIs only).
	Type string `json:"type"`
	// Target is, for IntegrationFunction, the name of a function of the stack (`target:`, or the
	// shorthand's `function:`), optionally qualified as in Lambda: NAME:$LATEST, NAME:3 (a version)
	// or NAME:prod (an alias). For IntegrationHTTPProxy it is the backend's URL (`target:`): http
	// or https, with a host; its path may hold the route's path parameters ("{id}", "{proxy}" for
	// a greedy "{proxy+}") and the whole URL stage variables ("${stageVariables.host}"), replaced
	// for each request. "" for IntegrationMock.
	Target string `json:"target,omitempty"`
	// Method is the method of the backend request of an IntegrationHTTPProxy (`method:`, default
	// MethodAny: the client's method); "" for other types.
	Method string `json:"method,omitempty"`
	// InvocationType is how an IntegrationFunction of an HTTP or REST API calls its function
	// (`invocationType:`): InvocationRequestResponse ("", the default) waits for the function and
	// answers its response; InvocationEvent queues an asynchronous invocation with the request's
	// event and answers 202 {"requestId": …} at once (docs/async.md).
	InvocationType string `json:"invocationType,omitempty"`
	// PayloadFormatVersion is, for IntegrationFunction in HTTP APIs, PayloadFormat2
	// (`payloadFormatVersion:`, the default) or PayloadFormat1; "" for other types and in
	// WebSocket APIs, whose events have a format of their own.
	PayloadFormatVersion string `json:"payloadFormatVersion,omitempty"`
	// Timeout is the integration timeout (`timeout:`): in HTTP APIs
	// MinIntegrationTimeout..MaxIntegrationTimeout, default DefaultIntegrationTimeout; in
	// WebSocket APIs MinWSIntegrationTimeout..MaxWSIntegrationTimeout, default
	// DefaultWSIntegrationTimeout. For IntegrationHTTPProxy it bounds the whole exchange with
	// the backend, the response body included.
	Timeout Duration `json:"timeout"`
	// TLS is how an IntegrationHTTPProxy checks an https backend's certificate (`tls:`); nil for
	// the system's roots and the URL's host name.
	TLS *IntegrationTLS `json:"tls,omitempty"`
	// RequestParameters change the backend request of an IntegrationHTTPProxy
	// (`requestParameters:`), as API Gateway's parameter mapping: keys such as
	// "overwrite:header.x-user", "append:querystring.tag", "remove:header.cookie" or
	// "overwrite:path"; values such as "$request.header.x-id", "$context.requestId",
	// "$stageVariables.v", "${request.path.id}-x" or a literal (see internal/mapping). nil
	// when none; at most MaxMappings.
	RequestParameters map[string]string `json:"requestParameters,omitempty"`
	// ResponseParameters change the response by the integration's status code
	// (`responseParameters:`, keyed "200".."599"): "overwrite:statuscode", and header keys as
	// in RequestParameters, with values from "$response.header.x", "$response.body.a",
	// "$context.*", "$stageVariables.*" or literals. For IntegrationFunction and
	// IntegrationHTTPProxy; nil when none.
	ResponseParameters map[string]map[string]string `json:"responseParameters,omitempty"`
	// StatusCode, Headers and Body are the answer of an IntegrationMock (`statusCode:`, default
	// 200; `headers:`; `body:`, a template that may use $context.*, $stageVariables.*,
	// $input.body, $input.params('x'), $input.json('$.a') and $input.path('$.a'), at most
	// MaxMockBodyBytes). Zero for other types.
	StatusCode int               `json:"statusCode,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
}

// IntegrationTLS is an HTTP proxy integration's `tls:`.
type IntegrationTLS struct {
	// CAFile is the absolute path of a PEM file of the certificate authorities the backend's
	// certificate must chain to (`caFile:`, relative to the stack file's directory), instead of
	// the system's; "" for the system's.
	CAFile string `json:"caFile,omitempty"`
	// ServerName is the name the backend's certificate must be for (`serverName:`), when it is
	// not the URL's host, as when the URL names an address; "" for the URL's host.
	ServerName string `json:"serverName,omitempty"`
}

// Duration is a time.Duration that is written in JSON as Go writes durations ("3s", "1m30s",
// "500ms"), as stack files write them.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d as time.Duration writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler: a duration string such as "3s" or "500ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"3s\" or \"500ms\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (want e.g. 3s or 500ms)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler: "go" or "wasm".
func (k SourceKind) MarshalText() ([]byte, error) {
	switch k {
	case SourceGo, SourceWasm, SourceZip:
		return []byte(k.String()), nil
	}
	return nil, fmt.Errorf("unknown source kind %d", int(k))
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *SourceKind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "go":
		*k = SourceGo
	case "wasm":
		*k = SourceWasm
	case "zip":
		*k = SourceZip
	default:
		return fmt.Errorf("unknown source kind %q: want go or wasm", b)
	}
	return nil
}

// NewRoute returns the route key of an API of type apiType with every setting at its default: a
// decoder fills what is written over it.
func NewRoute(key, apiType string) Route {
	r := Route{Key: key, Authorization: Authorization{Type: AuthNone}, Integration: Integration{
		Type:                 IntegrationFunction,
		PayloadFormatVersion: PayloadFormat2,
		Timeout:              Duration(DefaultIntegrationTimeout),
	}}
	switch apiType {
	case APITypeWebSocket:
		r.Integration.PayloadFormatVersion = ""
		r.Integration.Timeout = Duration(DefaultWSIntegrationTimeout)
	case APITypeREST:
		r.Integration.PayloadFormatVersion = PayloadFormat1
		r.Integration.Timeout = Duration(MaxRESTIntegrationTimeout)
	}
	return r
}

// Routes are an API's routes in the order they were written. In JSON they are an object keyed by
// route key, in that order, as in a stack file.
type Routes []Route

// MarshalJSON implements json.Marshaler.
func (rs Routes) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(r.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler, keeping the order of the keys.
func (rs *Routes) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("routes: want an object keyed by route key")
	}
	var out Routes
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		var r Route
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("routes[%s]: %w", strconv.Quote(key), err)
		}
		r.Key = key
		out = append(out, r)
	}
	*rs = out
	return nil
}

// authorizerJSON is an Authorizer in JSON: its type and the settings of that type side by side, as
// in a stack file.
type authorizerJSON struct {
	Type string `json:"type"`
	*JWTAuthorizer
	*FunctionAuthorizer
}

// MarshalJSON implements json.Marshaler.
func (a Authorizer) MarshalJSON() ([]byte, error) {
	return json.Marshal(authorizerJSON{a.Type, a.JWT, a.Function})
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Authorizer) UnmarshalJSON(b []byte) error {
	var j authorizerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	name := a.Name
	*a = Authorizer{Name: name, Type: j.Type, JWT: j.JWTAuthorizer, Function: j.FunctionAuthorizer}
	return nil
}

// UnmarshalJSON implements json.Unmarshaler, naming each stage and authorizer after its key.
func (a *API) UnmarshalJSON(b []byte) error {
	type plain API
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*a = API(p)
	a.fillNames(a.Name)
	return nil
}

// fillNames sets the Name of every stage and authorizer from its key, and the API's to name.
func (a *API) fillNames(name string) {
	a.Name = name
	for k, st := range a.Stages {
		st.Name = k
		a.Stages[k] = st
	}
	for k, z := range a.Authorizers {
		z.Name = k
		a.Authorizers[k] = z
	}
}

// UnmarshalJSON implements json.Unmarshaler, naming each function, API and usage plan after its
// key.
func (s *Stack) UnmarshalJSON(b []byte) error {
	type plain Stack
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Stack(p)
	for k, f := range s.Functions {
		f.Name = k
		s.Functions[k] = f
	}
	for k, a := range s.APIs {
		a.fillNames(k)
		s.APIs[k] = a
	}
	for k, u := range s.UsagePlans {
		u.Name = k
		s.UsagePlans[k] = u
	}
	for k, d := range s.Domains {
		d.Name = k
		s.Domains[k] = d
	}
	return nil
}
