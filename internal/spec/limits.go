package spec

import "time"

// SchemaVersion is the stack schema version these types describe (a stack file's `version: 1`).
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
	// MaxOutboundHosts bounds `allowedOutboundHosts:`.
	MaxOutboundHosts = 100

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
	// APITypeREST is a REST API: payload format 1.0, token and request authorizers, request
	// validation, gateway responses and a stage cache, as API Gateway's REST APIs.
	APITypeREST = "rest"
	// MaxRESTIntegrationTimeout bounds a REST API's integration timeout, as API Gateway's.
	MaxRESTIntegrationTimeout = 29 * time.Second
	// MaxBinaryMediaTypes bounds `binaryMediaTypes:`.
	MaxBinaryMediaTypes = 50
	// MaxMinimumCompressionSize bounds `minimumCompressionSize:` (API Gateway's 10 MB).
	MaxMinimumCompressionSize = 10 << 20
	// MaxModelBytes bounds one model's schema, encoded as JSON.
	MaxModelBytes = 64 << 10
	// MinCacheSizeMB and MaxCacheSizeMB bound a stage cache's `sizeMB:`. API Gateway's caches are
	// 0.5 to 237 GB of a cluster of their own; a stage cache here lives in the gateway's memory.
	MinCacheSizeMB = 0.5
	MaxCacheSizeMB = 1024
	// DefaultCacheTTL and MaxCacheTTL are a stage cache's TTL default and limit (API Gateway's).
	DefaultCacheTTL = 300 * time.Second
	MaxCacheTTL     = 3600 * time.Second

	// IntegrationFunction, IntegrationHTTPProxy and IntegrationMock are the integration types
	// (`type:`): a function of the stack (the default), an HTTP backend, and an answer made by
	// the gateway.
	IntegrationFunction  = "function"
	IntegrationHTTPProxy = "http_proxy"
	IntegrationMock      = "mock"
	// PayloadFormat2 (the default) and PayloadFormat1 are the payload format versions of function
	// integrations in HTTP APIs.
	PayloadFormat2 = "2.0"
	PayloadFormat1 = "1.0"
	// MethodAny is an HTTP proxy integration's default method: the client's own.
	MethodAny = "ANY"
	// MaxMappings bounds the entries of an integration's requestParameters, and of each status
	// code's responseParameters.
	MaxMappings = 50
	// MaxMockBodyBytes bounds a mock integration's body template.
	MaxMockBodyBytes = 64 << 10

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
	// DefaultAccountID is `iam.accountId:` when omitted: the account id local AWS tools use.
	DefaultAccountID = "000000000000"
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
	// AuthorizerToken and AuthorizerRequest are a REST API's function authorizers: a token
	// authorizer gets one header's value ({"type": "TOKEN", "authorizationToken", "methodArn"}),
	// a request authorizer the request (payload 1.0 with "type": "REQUEST" and "methodArn");
	// both answer with an IAM policy.
	AuthorizerToken   = "token"
	AuthorizerRequest = "request"

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
