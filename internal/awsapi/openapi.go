package awsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/openapi"
	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

// The OpenAPI 3.0 documents of HTTP APIs go through the openapi package, as every other reader and
// writer of them in Gatehouse: ExportApi writes the API's definition with openapi.Export, and
// ImportApi and ReimportApi read a document with openapi.Import into the same definition a stack
// file would hold, checked by stackfile, then keep it as API Gateway's resources.

// anyFunction is the Env an export checks a definition with: the functions were checked when the
// routes were made, and one deleted since must not stop an export.
func anyFunction() spec.Env {
	return spec.Env{HasFunction: func(string) bool { return true }, UsagePlans: true}
}

// export writes a's OpenAPI document (HTTP APIs only).
func (s *Server) export(w http.ResponseWriter, req *request, a *gwAPI, specification string) error {
	if specification != "OAS30" {
		return gwBad(fmt.Sprintf("specification %q: want OAS30", specification))
	}
	if a.ProtocolType != "HTTP" {
		return gwBad("only HTTP APIs are exported to OpenAPI")
	}
	def, err := a.definitionDoc(true)
	if err != nil {
		return err
	}
	def["stages"] = map[string]any{"$default": map[string]any{}} // not exported; a definition needs one
	data, err := json.Marshal(def)
	if err != nil {
		return err
	}
	api, err := stackfile.ParseAPI("the API", data, "", "export", anyFunction())
	if err != nil {
		return gwBad("the API cannot be exported: " + strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	q := req.r.URL.Query()
	o := openapi.ExportOptions{Title: a.Name, Description: a.Description, Version: a.Created.Format(time.RFC3339),
		Region: s.cfg.Region, AccountID: s.cfg.AccountID, YAML: strings.EqualFold(q.Get("outputType"), "YAML")}
	if stage := q.Get("stageName"); stage != "" && a.Stages[stage] != nil {
		o.ServerURL, o.Stage = strings.TrimSuffix(s.cfg.APIs.GatewayURL, "/")+"/"+a.ID, stage
	}
	body, err := openapi.Export(api, o)
	if err != nil {
		return gwBad(err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	if o.YAML {
		w.Header().Set("Content-Type", "application/yaml")
	}
	_, err = w.Write(body)
	return err
}

// fromOpenAPI reads an HTTP API's OpenAPI document (JSON or YAML) into a's name, description,
// CORS, integrations, routes and authorizers, replacing those it had; its stages stay. It returns
// what the document holds that is not served (skipped), as ImportApi's warnings.
func (s *Server) fromOpenAPI(ctx context.Context, a *gwAPI, body string) ([]string, error) {
	doc, err := openapi.Parse("the document", []byte(body))
	if err != nil {
		return nil, gwBad(err.Error())
	}
	// API Gateway v2 imports HTTP APIs: a document that would read as a REST API's is read as an
	// HTTP API's here, as ImportApi reads it.
	im, err := openapi.ImportAs("the document", doc, spec.APITypeHTTP)
	if err != nil {
		return nil, gwBad(err.Error())
	}
	env, err := s.cfg.APIs.Env(ctx)
	if err != nil {
		return nil, err
	}
	api, err := stackfile.ParseAPIDoc("the document", im.Definition, "", "import", env)
	if err != nil {
		return nil, gwBad(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	a.Name, a.Description = im.Name, im.Description
	s.fromSpec(a, api, func(string) string { return randomID(7) })
	var warnings []string
	for _, n := range im.Notices {
		warnings = append(warnings, n.Error())
	}
	return warnings, nil
}

// withWarnings adds ImportApi's and ReimportApi's warnings to an API's view, when there are any.
func withWarnings(v map[string]any, warnings []string) map[string]any {
	if len(warnings) > 0 {
		v["warnings"] = warnings
	}
	return v
}
