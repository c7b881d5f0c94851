package gateway

import (
	"bytes"
	"encoding/base64"
	"maps"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gofiber/fiber/v2"
)

// eventV1Version is the version field of HTTP API payload 1.0 events; REST events have none.
const eventV1Version = "1.0"

// EventV1Context is what a payload format 1.0 event needs beyond EventContext.
type EventV1Context struct {
	EventContext
	// Resource is the matched route's path pattern ("/pets/{id}", "/{proxy+}"), or "$default"
	// for the $default route. It is the event's resource and requestContext.resourcePath.
	Resource string
	// REST makes the REST API flavour of the event rather than the HTTP API one; see
	// BuildEventV1.
	REST bool
	// ResourceID is requestContext.resourceId of a REST event; HTTP API events carry the route
	// key there instead.
	ResourceID string
	// Path, when set, is a REST event's path: the request's path below the API's mount and stage,
	// as the API sees it at its own endpoint. "" removes a leading stage segment from the path.
	Path string
	// BinaryMediaTypes are a REST API's binary media types: a REST event's body is base64 when
	// its content type is one of them, and text otherwise. HTTP API events ignore them.
	BinaryMediaTypes []string
}

// BuildEventV1 encodes the request held by c (a *fiber.Ctx whose body was already read) as
// an API Gateway Lambda proxy event of payload format 1.0 (JSON bytes), the format of REST
// APIs that HTTP APIs also offer. The result does not refer to c's buffers and stays valid
// after the handler returns; ec's maps are only read.
//
// # Fields
//
//   - version is "1.0" in HTTP API events and absent in REST events.
//   - resource and requestContext.resourcePath are ec.Resource; requestContext.resourceId
//     is ec.ResourceID for REST and the route key for HTTP APIs.
//   - path is the path exactly as received (not decoded, trailing "/" kept). In HTTP API
//     events it includes the stage segment, like payload 2.0's rawPath. In REST events a
//     leading stage segment ("/dev") is removed from path, as REST APIs do, and kept in
//     requestContext.path; any other prefix (an API mount) stays. requestContext.path is
//     the path as received in both flavours.
//   - multiValueHeaders holds every value of every header, in the order received, and
//     headers the last value of each. HTTP API events lower-case the names; REST events
//     keep them as the HTTP server presents them (canonical case: "Content-Type"), where
//     API Gateway keeps the client's spelling. Cookie headers are ordinary headers here
//     (there is no cookies field): each Cookie header is one value, as received.
//   - x-forwarded-for, x-forwarded-proto and x-forwarded-port are set as BuildEvent sets
//     them (the client's x-forwarded-for values joined with ",", then ", " and the source
//     IP; the proto and port of the gateway's listener) and have a single value, the same
//     in headers and multiValueHeaders. REST events spell them "X-Forwarded-For" etc.
//   - multiValueQueryStringParameters holds every value of every key, in order, and
//     queryStringParameters the last value of each; both are form-decoded as in
//     BuildEvent (an invalid escape leaves the text raw; pairs with an empty key are
//     skipped) and both are null without a query.
//   - pathParameters and stageVariables are null when empty.
//   - body is null when empty; otherwise it is text or base64 (isBase64Encoded true) by
//     the rule BuildEvent uses. isBase64Encoded is always present.
//   - requestContext: accountId, apiId, domainName, domainPrefix, stage and the request id
//     (requestId and extendedRequestId) as in BuildEvent; httpMethod; protocol
//     ("HTTP/1.1"); requestTime in CLF in UTC and requestTimeEpoch in ms; identity with
//     sourceIp and userAgent, the other fields null unless an IAM caller fills them.
//
// # Authorizer
//
// requestContext.authorizer is null without an authorizer (or when ec.Authorizer holds
// nothing); otherwise, from ec.Authorizer:
//
//   - JWT: {"claims": {…}, "scopes": […]}, scopes null when the route has none.
//   - Function authorizer context: {"lambda": {…}} in HTTP API events, as payload 2.0
//     has it; in REST events its keys directly under authorizer, as REST APIs place a
//     Lambda authorizer's context (principalId only if the context holds one).
//   - IAM: no authorizer entry; the caller fills requestContext.identity: accessKey,
//     accountId, caller (the caller id), user (the user id), userArn, principalOrgId,
//     cognitoIdentityId and cognitoIdentityPoolId.
//
// The event is encoded from the aws-lambda-go events.APIGatewayProxyRequest type without
// HTML escaping, with a few fields replaced so that empty values are null as API Gateway
// sends them. requestContext.identity.clientCert (mTLS only), apiKey and apiKeyId are
// never present.
func BuildEventV1(c *fiber.Ctx, ec EventV1Context) ([]byte, error) {
	req := c.Request()
	rawPath := string(req.URI().PathOriginal())
	if rawPath == "" {
		rawPath = "/"
	}
	sourceIP := ec.SourceIP
	if sourceIP == "" {
		sourceIP = c.Context().RemoteIP().String()
	}
	at := ec.Time
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	account := ec.AccountID
	if account == "" {
		account = eventAccountID
	}

	headers, multiHeaders := eventV1Headers(c, sourceIP, ec.REST)
	query, multiQuery := eventV1QueryParameters(string(req.URI().QueryString()))

	path, resourceID, version := rawPath, ec.RouteKey, eventV1Version
	if ec.REST {
		path, resourceID, version = stripStage(rawPath, ec.Stage), ec.ResourceID, ""
		if ec.Path != "" {
			path = ec.Path
		}
	}
	identity := eventV1Identity{SourceIP: sourceIP, UserAgent: string(req.Header.UserAgent())}
	if a := ec.Authentication; a != nil {
		cc := a.ClientCert
		identity.ClientCert = &events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert{ClientCertPem: cc.ClientCertPem,
			SubjectDN: cc.SubjectDN, IssuerDN: cc.IssuerDN, SerialNumber: cc.SerialNumber,
			Validity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCertValidity{NotBefore: cc.Validity.NotBefore, NotAfter: cc.Validity.NotAfter}}
	}
	if ec.Authorizer != nil && ec.Authorizer.IAM != nil {
		identity.setIAM(ec.Authorizer.IAM)
	}

	ev := eventV1Request{
		Version: version,
		APIGatewayProxyRequest: events.APIGatewayProxyRequest{
			Resource:                        ec.Resource,
			Path:                            path,
			HTTPMethod:                      c.Method(),
			Headers:                         headers,
			MultiValueHeaders:               multiHeaders,
			QueryStringParameters:           query,
			MultiValueQueryStringParameters: multiQuery,
			PathParameters:                  nilIfEmpty(ec.PathParameters),
			StageVariables:                  nilIfEmpty(ec.StageVariables),
		},
		RequestContext: eventV1RequestContext{
			APIGatewayProxyRequestContext: events.APIGatewayProxyRequestContext{
				AccountID:         account,
				ResourceID:        resourceID,
				Stage:             ec.Stage,
				DomainName:        ec.DomainName,
				DomainPrefix:      eventDomainPrefix(ec.DomainName),
				RequestID:         ec.RequestID,
				ExtendedRequestID: ec.RequestID,
				Protocol:          string(req.Header.Protocol()),
				ResourcePath:      ec.Resource,
				Path:              rawPath,
				Authorizer:        eventV1Authorizer(ec.Authorizer, ec.REST),
				HTTPMethod:        c.Method(),
				RequestTime:       at.Format(eventTimeLayout),
				RequestTimeEpoch:  at.UnixMilli(),
				APIID:             ec.APIID,
			},
			Identity: identity,
		},
	}
	if body := req.Body(); len(body) > 0 {
		var s string
		ct := string(req.Header.ContentType())
		text := isTextMediaType(ct) && utf8.Valid(body)
		if ec.REST {
			text = !mediaTypeMatches(ec.BinaryMediaTypes, ct)
		}
		if text {
			s = string(body)
		} else {
			s = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
		ev.Body = &s
	}
	return encodeEvent(&ev, "1.0")
}

// eventV1Request is the payload 1.0 event as encoded: the aws-lambda-go type with a version,
// a null body when empty, an isBase64Encoded that is always present, and a request context
// whose identity has null fields.
type eventV1Request struct {
	Version string `json:"version,omitempty"`
	events.APIGatewayProxyRequest
	RequestContext  eventV1RequestContext `json:"requestContext"`
	Body            *string               `json:"body"`
	IsBase64Encoded bool                  `json:"isBase64Encoded"`
}

// eventV1RequestContext is the aws-lambda-go request context with its identity replaced.
type eventV1RequestContext struct {
	events.APIGatewayProxyRequestContext
	Identity eventV1Identity `json:"identity"`
}

// eventV1Identity is requestContext.identity of a 1.0 event: the fields API Gateway sends,
// null when unknown. It decodes into aws-lambda-go's events.APIGatewayRequestIdentity.
type eventV1Identity struct {
	AccessKey                     *string `json:"accessKey"`
	AccountID                     *string `json:"accountId"`
	Caller                        *string `json:"caller"`
	CognitoAuthenticationProvider *string `json:"cognitoAuthenticationProvider"`
	CognitoAuthenticationType     *string `json:"cognitoAuthenticationType"`
	CognitoIdentityID             *string `json:"cognitoIdentityId"`
	CognitoIdentityPoolID         *string `json:"cognitoIdentityPoolId"`
	PrincipalOrgID                *string `json:"principalOrgId"`
	SourceIP                      string  `json:"sourceIp"`
	User                          *string `json:"user"`
	UserAgent                     string  `json:"userAgent"`
	UserArn                       *string `json:"userArn"`
	// ClientCert is the client certificate of a mutual TLS request, as API Gateway puts it in 1.0
	// events; omitted without one.
	ClientCert *events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert `json:"clientCert,omitempty"`
}

// setIAM fills the identity with what an IAM authorizer found; empty values stay null.
func (id *eventV1Identity) setIAM(iam *events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription) {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	id.AccessKey = str(iam.AccessKey)
	id.AccountID = str(iam.AccountID)
	id.Caller = str(iam.CallerID)
	id.User = str(iam.UserID)
	id.UserArn = str(iam.UserARN)
	id.PrincipalOrgID = str(iam.PrincipalOrgID)
	id.CognitoIdentityID = str(iam.CognitoIdentity.IdentityID)
	id.CognitoIdentityPoolID = str(iam.CognitoIdentity.IdentityPoolID)
}

// eventV1Authorizer returns requestContext.authorizer of a 1.0 event (see BuildEventV1), nil
// when there is nothing to put there.
func eventV1Authorizer(a *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, rest bool) map[string]any {
	if a == nil {
		return nil
	}
	m := make(map[string]any)
	if a.Lambda != nil {
		if rest {
			maps.Copy(m, a.Lambda)
		} else {
			m["lambda"] = a.Lambda
		}
	}
	if a.JWT != nil {
		m["claims"] = a.JWT.Claims
		m["scopes"] = a.JWT.Scopes
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// eventV1Headers collects the request headers of c for a 1.0 event: the last value of each
// name and every value in order, with the x-forwarded-* headers set. Names are lower-cased
// unless rest.
func eventV1Headers(c *fiber.Ctx, sourceIP string, rest bool) (map[string]string, map[string][]string) {
	h := &c.Request().Header
	multi := make(map[string][]string, h.Len()+3)
	name := func(key []byte) string {
		if rest {
			return string(key)
		}
		return strings.ToLower(string(key))
	}
	// fasthttp re-serializes parsed cookies as one header, so read the Cookie headers as
	// received; a request built in memory has no raw headers, and then the re-serialized
	// header is the best there is.
	raw := len(h.RawHeaders()) > 0
	var cookies []string
	h.VisitAll(func(key, value []byte) {
		if bytes.EqualFold(key, []byte(fiber.HeaderCookie)) {
			if !raw {
				cookies = append(cookies, string(value))
			}
			return
		}
		k := name(key)
		multi[k] = append(multi[k], string(value))
	})
	if raw {
		h.VisitAllInOrder(func(key, value []byte) {
			if bytes.EqualFold(key, []byte(fiber.HeaderCookie)) {
				cookies = append(cookies, string(value))
			}
		})
	}
	if len(cookies) > 0 {
		multi[name([]byte(fiber.HeaderCookie))] = cookies
	}

	// The x-forwarded-* headers are what BuildEvent makes of them, one value each.
	forwarded := []string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-port"}
	fwd := make(map[string]string, len(forwarded))
	for _, k := range forwarded {
		if v := takeHeader(multi, k); k == "x-forwarded-for" && len(v) > 0 {
			fwd[k] = strings.Join(v, ",")
		}
	}
	addForwardedHeaders(fwd, c, sourceIP)
	for _, k := range forwarded {
		if v, ok := fwd[k]; ok {
			if rest {
				k = textproto.CanonicalMIMEHeaderKey(k)
			}
			multi[k] = []string{v}
		}
	}

	headers := make(map[string]string, len(multi))
	for k, v := range multi {
		headers[k] = v[len(v)-1]
	}
	return headers, multi
}

// takeHeader removes from multi every spelling of the lower-case header name and returns
// their values, spellings in sorted order.
func takeHeader(multi map[string][]string, lower string) []string {
	var names []string
	for k := range multi {
		if strings.EqualFold(k, lower) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var values []string
	for _, k := range names {
		values = append(values, multi[k]...)
		delete(multi, k)
	}
	return values
}

// eventV1QueryParameters decodes a raw query string into queryStringParameters (the last
// value of each key) and multiValueQueryStringParameters (every value in order); both are
// nil when there are no parameters.
func eventV1QueryParameters(rawQuery string) (map[string]string, map[string][]string) {
	if rawQuery == "" {
		return nil, nil
	}
	var last map[string]string
	var multi map[string][]string
	for pair := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(pair, "=")
		k = decodeQueryComponent(k)
		if k == "" {
			continue
		}
		v = decodeQueryComponent(v)
		if last == nil {
			last, multi = make(map[string]string), make(map[string][]string)
		}
		last[k] = v
		multi[k] = append(multi[k], v)
	}
	return last, multi
}

// stripStage removes a leading stage segment ("/dev" of "/dev/pets") from a raw path, as a
// REST API's event path has it; "/dev" alone becomes "/". The $default stage has no segment.
func stripStage(rawPath, stage string) string {
	if stage == "" || stage == DefaultStage {
		return rawPath
	}
	rest, ok := strings.CutPrefix(rawPath, "/"+stage)
	switch {
	case !ok:
		return rawPath
	case rest == "":
		return "/"
	case rest[0] == '/':
		return rest
	}
	return rawPath // "/devices" is not in stage "dev"
}
