package sam

import (
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/openapi"
)

// apiGatewayV2 reads one AWS::ApiGatewayV2 resource into its API's definition. Read returns them in
// an order where each finds what it refers to: APIs, integrations, authorizers, routes, route
// responses, stages.
func (r *reader) apiGatewayV2(id, typ string, res *doctree.Node) error {
	p, err := r.props(res, "")
	if err != nil {
		return err
	}
	if typ == "AWS::ApiGatewayV2::Api" {
		kind := "http"
		pt := p.Get("ProtocolType")
		switch pt.Scalar() {
		case "HTTP":
		case "WEBSOCKET":
			kind = "websocket"
		default:
			return r.Errorf(cmpNode(pt, res), "API %s: ProtocolType %q: want HTTP or WEBSOCKET", id, pt.Scalar())
		}
		api := r.api(id, kind, res)
		if v := p.Get("RouteSelectionExpression"); v != nil && kind == "websocket" {
			api.Set("routeSelectionExpression", v)
		}
		if c := p.Get("CorsConfiguration"); c != nil {
			cors, err := r.cors(c)
			if err != nil {
				return err
			}
			api.Set("cors", cors)
		}
		for _, k := range []string{"Body", "BodyS3Location", "Target", "RouteKey", "CredentialsArn"} {
			if v := p.Get(k); v != nil {
				r.Notice(v, "API %s: %s is not served locally: make its routes with AWS::ApiGatewayV2::Route resources", id, k)
			}
		}
		return nil
	}
	apiID := p.Get("ApiId")
	api := r.apis.Get(apiID.Scalar())
	if api == nil {
		return r.Errorf(cmpNode(apiID, res), "%s %s: ApiId %q is not an AWS::ApiGatewayV2::Api of the template", typ, id, apiID.Scalar())
	}
	switch typ {
	case "AWS::ApiGatewayV2::Integration":
		integration, fn, err := r.v2Integration(id, res, p, api)
		if err != nil {
			return err
		}
		if fn != "" {
			r.integrations[id] = fn
		}
		r.routeOf[id] = integration
	case "AWS::ApiGatewayV2::Authorizer":
		def := doctree.NewMap(res)
		name := id
		srcs := p.Get("IdentitySource")
		switch t := p.Get("AuthorizerType"); t.Scalar() {
		case "JWT":
			jc := p.Get("JwtConfiguration")
			def.Set("type", doctree.Str("jwt", t))
			def.Set("issuer", jc.Get("Issuer"))
			def.Set("audiences", jc.Get("Audience"))
			if srcs != nil && len(srcs.Items) > 0 {
				def.Set("identitySource", srcs.Items[0])
			}
		case "REQUEST":
			uri := p.Get("AuthorizerUri")
			fn, ok := openapi.FunctionOfURI(uri.Scalar())
			if !ok {
				return r.Errorf(cmpNode(uri, res), "authorizer %s: AuthorizerUri %q: want a function's invocation ARN", id, uri.Scalar())
			}
			def.Set("type", doctree.Str("function", t))
			def.Set("function", doctree.Str(fn, uri))
			if srcs != nil {
				def.Set("identitySources", srcs)
			}
			if v := p.Get("AuthorizerResultTtlInSeconds"); v != nil {
				def.Set("resultTtl", doctree.Str(v.Scalar()+"s", v))
			}
			if v := p.Get("EnableSimpleResponses"); v != nil {
				def.Set("simpleResponses", v)
			}
		default:
			return r.Errorf(cmpNode(t, res), "authorizer %s: AuthorizerType %q: want JWT or REQUEST", id, t.Scalar())
		}
		auths := api.Get("authorizers")
		if auths == nil {
			auths = doctree.NewMap(res)
			api.Set("authorizers", auths)
		}
		auths.Set(name, def)
	case "AWS::ApiGatewayV2::Route":
		key := p.Get("RouteKey")
		if key == nil {
			return r.Errorf(res, "route %s has no RouteKey", id)
		}
		target := p.Get("Target")
		iid, ok := strings.CutPrefix(target.Scalar(), "integrations/")
		integration := r.routeOf[iid]
		if !ok || integration == nil {
			return r.Errorf(cmpNode(target, res), "route %s: Target %q: want integrations/ and an AWS::ApiGatewayV2::Integration of the template (!Join or !Sub with its Ref)", id, target.Scalar())
		}
		route := doctree.NewMap(key)
		route.Set("integration", integration)
		switch t := p.Get("AuthorizationType"); t.Scalar() {
		case "", "NONE":
		case "AWS_IAM":
			m := doctree.NewMap(t)
			m.Set("type", doctree.Str("iam", t))
			route.Set("authorization", m)
		case "JWT", "CUSTOM":
			aid := p.Get("AuthorizerId")
			def := api.Get("authorizers").Get(aid.Scalar())
			if def == nil {
				return r.Errorf(cmpNode(aid, t), "route %s: AuthorizerId %q is not an AWS::ApiGatewayV2::Authorizer of its API", id, aid.Scalar())
			}
			m := doctree.NewMap(t)
			m.Set("type", def.Get("type"))
			m.Set("authorizer", doctree.Str(aid.Scalar(), aid))
			if v := p.Get("AuthorizationScopes"); v != nil {
				m.Set("scopes", v)
			}
			route.Set("authorization", m)
		default:
			return r.Errorf(t, "route %s: AuthorizationType %q: want NONE, AWS_IAM, JWT or CUSTOM", id, t.Scalar())
		}
		if v := p.Get("ApiKeyRequired"); v != nil {
			route.Set("apiKeyRequired", v)
		}
		api.Get("routes").Set(key.Scalar(), route)
		r.routeOf["route:"+id] = route
	case "AWS::ApiGatewayV2::RouteResponse":
		rid := p.Get("RouteId")
		route := r.routeOf["route:"+rid.Scalar()]
		if route == nil {
			return r.Errorf(cmpNode(rid, res), "route response %s: RouteId %q is not an AWS::ApiGatewayV2::Route of the template", id, rid.Scalar())
		}
		if k := p.Get("RouteResponseKey"); k.Scalar() != "$default" {
			return r.Errorf(cmpNode(k, res), "route response %s: RouteResponseKey %q: Gatehouse has the $default route response only", id, k.Scalar())
		}
		route.Set("routeResponse", &doctree.Node{Kind: doctree.Bool, Text: "true", Line: res.Line, Column: res.Column, Path: res.Path})
	case "AWS::ApiGatewayV2::Stage":
		name := p.Get("StageName")
		stage := doctree.NewMap(res)
		if v := p.Get("StageVariables"); v != nil {
			stage.Set("variables", v)
		}
		if t := throttleOf(p.Get("DefaultRouteSettings")); t != nil {
			stage.Set("throttle", t)
		}
		if v := p.Get("AccessLogSettings"); v != nil {
			r.Notice(v, "stage %s: access logs are not written yet: ignored", id)
		}
		stages := api.Get("stages")
		if stages == nil {
			stages = doctree.NewMap(res)
			api.Set("stages", stages)
		}
		stages.Set(name.Scalar(), stage)
	}
	return nil
}

// v2Integration reads an AWS::ApiGatewayV2::Integration (properties p) of api: AWS_PROXY to a
// function, whose target it also returns, or HTTP_PROXY to a backend URL.
func (r *reader) v2Integration(id string, res, p, api *doctree.Node) (*doctree.Node, string, error) {
	t, uri := p.Get("IntegrationType"), p.Get("IntegrationUri")
	integration := doctree.NewMap(res)
	fn := ""
	switch strings.ToUpper(t.Scalar()) {
	case "AWS_PROXY":
		var ok bool
		if fn, ok = openapi.FunctionOfURI(uri.Scalar()); !ok {
			return nil, "", r.Errorf(cmpNode(uri, res), "integration %s: IntegrationUri %q: want a function's ARN (Fn::GetAtt FUNCTION.Arn) or its invocation ARN", id, uri.Scalar())
		}
		integration.Set("type", doctree.Str("function", t))
		integration.Set("target", doctree.Str(fn, uri))
		// A WebSocket API's events have a format of their own.
		if v := p.Get("PayloadFormatVersion"); v != nil && api.Get("type").Scalar() == "http" {
			integration.Set("payloadFormatVersion", doctree.Str(v.Scalar(), v))
		}
		if v := p.Get("RequestParameters"); v != nil {
			r.Notice(v, "integration %s: RequestParameters of an AWS_PROXY integration are not served: the function receives the whole request in its event; ignored", id)
		}
	case "HTTP_PROXY":
		if ct := p.Get("ConnectionType"); strings.EqualFold(ct.Scalar(), "VPC_LINK") {
			return nil, "", r.Errorf(ct, "integration %s: private integrations (ConnectionType VPC_LINK) are not served locally: point IntegrationUri at the backend's URL", id)
		}
		if uri.Scalar() == "" {
			return nil, "", r.Errorf(cmpNode(uri, res), "integration %s: an HTTP_PROXY integration's IntegrationUri is the backend's URL, such as https://backend.example.com/{proxy}", id)
		}
		integration.Set("type", doctree.Str("http_proxy", t))
		integration.Set("target", doctree.Str(uri.Scalar(), uri))
		if v := p.Get("IntegrationMethod"); v != nil {
			integration.Set("method", doctree.Str(strings.ToUpper(v.Scalar()), v))
		}
		// AWS asks HTTP_PROXY integrations for 1.0, which the stack file takes and ignores.
		if v := p.Get("PayloadFormatVersion"); v != nil {
			integration.Set("payloadFormatVersion", doctree.Str(v.Scalar(), v))
		}
		if v := p.Get("RequestParameters"); v != nil {
			integration.Set("requestParameters", v)
		}
		if tls := p.Get("TlsConfig"); tls != nil {
			m := doctree.NewMap(tls)
			if v := tls.Get("ServerNameToVerify"); v != nil {
				m.Set("serverName", v)
			}
			integration.Set("tls", m)
		}
	default:
		return nil, "", r.Errorf(cmpNode(t, res), "integration %s: IntegrationType %s is not served yet: Gatehouse serves AWS_PROXY integrations to functions and HTTP_PROXY integrations to backend URLs", id, t.Scalar())
	}
	if v := p.Get("TimeoutInMillis"); v != nil {
		integration.Set("timeout", doctree.Str(v.Scalar()+"ms", v))
	}
	if v := p.Get("ResponseParameters"); v != nil {
		rp, err := r.v2ResponseParameters(id, v)
		if err != nil {
			return nil, "", err
		}
		integration.Set("responseParameters", rp)
	}
	return integration, fn, nil
}

// v2ResponseParameters reads an integration's ResponseParameters as CloudFormation writes them
// ({"200": {ResponseParameters: [{Destination, Source}]}}) into the stack file's
// {"200": {DESTINATION: SOURCE}}.
func (r *reader) v2ResponseParameters(id string, v *doctree.Node) (*doctree.Node, error) {
	if v.Kind != doctree.Map {
		return nil, r.Errorf(v, "integration %s: ResponseParameters: want a mapping of status codes to {ResponseParameters: [{Destination, Source}]}", id)
	}
	out := doctree.NewMap(v)
	for code, list := range v.All() {
		m := doctree.NewMap(list)
		for _, p := range list.Get("ResponseParameters").List() {
			dest, src := p.Get("Destination"), p.Get("Source")
			if dest == nil || src == nil {
				return nil, r.Errorf(p, "integration %s: a response parameter has a Destination (such as overwrite:statuscode) and a Source", id)
			}
			m.Set(dest.Scalar(), src)
		}
		out.Set(code, m)
	}
	return out, nil
}
