package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The typed calls. Those that answer JSON also return the answer as the node sent it (raw), for
// clients that print it as it came.

// FunctionPath is the admin API path of function name, or of elems under it, each path-escaped.
func FunctionPath(name string, elems ...string) string {
	p := "/admin/v1/functions/" + url.PathEscape(name)
	for _, e := range elems {
		p += "/" + url.PathEscape(e)
	}
	return p
}

// call is DoJSON decoding into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, []byte, error) {
	var out T
	raw, err := c.DoJSON(ctx, method, path, in, &out)
	return out, raw, err
}

// Functions lists the deployed functions.
func (c *Client) Functions(ctx context.Context) (FunctionList, []byte, error) {
	return call[FunctionList](ctx, c, http.MethodGet, "/admin/v1/functions", nil)
}

// Function describes one function: its newest version and its aliases.
func (c *Client) Function(ctx context.Context, name string) (FunctionDetail, []byte, error) {
	return call[FunctionDetail](ctx, c, http.MethodGet, FunctionPath(name), nil)
}

// DeleteFunction deletes a function with all its versions and aliases.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, FunctionPath(name), nil, nil)
	return err
}

// Versions lists a function's versions, oldest first.
func (c *Client) Versions(ctx context.Context, function string) (VersionList, []byte, error) {
	return call[VersionList](ctx, c, http.MethodGet, FunctionPath(function, "versions"), nil)
}

// Aliases lists a function's aliases.
func (c *Client) Aliases(ctx context.Context, function string) (AliasList, []byte, error) {
	return call[AliasList](ctx, c, http.MethodGet, FunctionPath(function, "aliases"), nil)
}

// SetAlias points a function's alias as req says, creating it when needed.
func (c *Client) SetAlias(ctx context.Context, function, alias string, req AliasRequest) (AliasView, []byte, error) {
	return call[AliasView](ctx, c, http.MethodPut, FunctionPath(function, "aliases", alias), req)
}

// DeleteAlias deletes a function's alias.
func (c *Client) DeleteAlias(ctx context.Context, function, alias string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, FunctionPath(function, "aliases", alias), nil, nil)
	return err
}

// DeployOptions are the optional parts of a deploy.
type DeployOptions struct {
	// Alias, when set, is pointed at the deployed version.
	Alias string
	// Description is the new version's description.
	Description string
}

// Deploy uploads a bundle (a zip, size bytes long) and answers once the node's workers have loaded
// the version; bounded by UploadTimeout. The node checks the size before reading the bundle.
func (c *Client) Deploy(ctx context.Context, bundle io.Reader, size int64, opts DeployOptions) (DeployAnswer, []byte, error) {
	var out DeployAnswer
	q := url.Values{}
	if opts.Alias != "" {
		q.Set("alias", opts.Alias)
	}
	if opts.Description != "" {
		q.Set("description", opts.Description)
	}
	target := "/admin/v1/functions"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := c.NewRequest(ctx, http.MethodPost, target, bundle, "application/zip")
	if err != nil {
		return out, nil, err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := c.Send(req, orDefault(c.UploadTimeout, DefaultUploadTimeout))
	if err != nil {
		return out, nil, err
	}
	defer resp.Body.Close()
	raw, err := readAnswer(resp, &out)
	return out, raw, err
}

// Invocation is the answer of an invocation.
type Invocation struct {
	// Version is the number of the version that ran (0 when the node did not say).
	Version int
	// Output is the function's output, or, when Error is set, the description of its failure as the
	// node sent it.
	Output []byte
	// Error is set when the function failed.
	Error *FunctionError
}

// Invoke runs function (the version qualifier names: a number, $LATEST or an alias; "" for
// $LATEST) with payload, synchronously, bounded by InvokeTimeout. A function that fails is not an
// error: its Invocation's Error is set. Errors are the failures to run it.
func (c *Client) Invoke(ctx context.Context, function, qualifier string, payload []byte) (*Invocation, error) {
	path := FunctionPath(function, "invocations")
	if qualifier != "" {
		path += "?" + url.Values{"qualifier": {qualifier}}.Encode()
	}
	contentType := "application/octet-stream"
	if json.Valid(payload) {
		contentType = "application/json"
	}
	req, err := c.NewRequest(ctx, http.MethodPost, path, bytes.NewReader(payload), contentType)
	if err != nil {
		return nil, err
	}
	resp, err := c.Send(req, orDefault(c.InvokeTimeout, DefaultInvokeTimeout))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	inv := &Invocation{}
	if inv.Output, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	inv.Version, _ = strconv.Atoi(resp.Header.Get(HeaderExecutedVersion))
	if kind := resp.Header.Get(HeaderFunctionError); kind != "" {
		var e FunctionError
		if json.Unmarshal(inv.Output, &e) != nil || e.ErrorType == "" {
			e = FunctionError{ErrorType: kind, ErrorMessage: strings.TrimSpace(string(inv.Output))}
		}
		inv.Error = &e
	}
	return inv, nil
}

// InvokeAsync queues an asynchronous invocation of function (Lambda's Event invocation type) and
// returns its request id once the node has stored it.
func (c *Client) InvokeAsync(ctx context.Context, function, qualifier string, payload []byte) (string, error) {
	q := url.Values{"invocationType": {"Event"}}
	if qualifier != "" {
		q.Set("qualifier", qualifier)
	}
	contentType := "application/octet-stream"
	if json.Valid(payload) {
		contentType = "application/json"
	}
	resp, err := c.Do(ctx, http.MethodPost, FunctionPath(function, "invocations")+"?"+q.Encode(), bytes.NewReader(payload), contentType)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out Queued
	if _, err := readAnswer(resp, &out); err != nil {
		return "", err
	}
	return out.RequestID, nil
}

// Queues lists the asynchronous invocation queues.
func (c *Client) Queues(ctx context.Context) ([]QueueStats, error) {
	var out QueueList
	if _, err := c.DoJSON(ctx, http.MethodGet, "/admin/v1/queues", nil, &out); err != nil {
		return nil, err
	}
	return out.Queues, nil
}

// Redrive queues a function's dead letters again and returns how many.
func (c *Client) Redrive(ctx context.Context, function string) (int, error) {
	var out Redriven
	if _, err := c.DoJSON(ctx, http.MethodPost, "/admin/v1/queues/"+url.PathEscape(function)+"/redrive", nil, &out); err != nil {
		return 0, err
	}
	return out.Queued, nil
}

// Publish stores data as a message on a subject of the stack's event bus and returns its sequence
// number.
func (c *Client) Publish(ctx context.Context, subject string, data []byte) (uint64, error) {
	resp, err := c.Do(ctx, http.MethodPost, "/admin/v1/events/"+url.PathEscape(subject), bytes.NewReader(data), "application/octet-stream")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out Published
	if _, err := readAnswer(resp, &out); err != nil {
		return 0, err
	}
	return out.Sequence, nil
}

// Logs reads a function's last limit log records and, with follow, every new one until ctx ends
// (without a timeout then): NDJSON, one [LogRecord] a line, and blank lines that keep the stream
// alive. The caller closes it.
func (c *Client) Logs(ctx context.Context, function string, limit int, follow bool) (io.ReadCloser, error) {
	return c.logStream(ctx, FunctionPath(function, "logs"), limit, follow)
}

// logStream GETs a log endpoint's NDJSON: the last limit records, then, with follow, every new one
// (with no timeout: the stream lasts until ctx ends).
func (c *Client) logStream(ctx context.Context, path string, limit int, follow bool) (io.ReadCloser, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	timeout := orDefault(c.Timeout, DefaultTimeout)
	if follow {
		q.Set("follow", "true")
		timeout = 0
	}
	req, err := c.NewRequest(ctx, http.MethodGet, path+"?"+q.Encode(), nil, "")
	if err != nil {
		return nil, err
	}
	resp, err := c.Send(req, timeout)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// AccessLog returns the access log records of an API's stage whose access log goes to a log group:
// the last limit, then, with follow, every new one, as Logs does.
func (c *Client) AccessLog(ctx context.Context, api, stage string, limit int, follow bool) (io.ReadCloser, error) {
	return c.logStream(ctx, "/admin/v1/apis/"+url.PathEscape(api)+"/stages/"+url.PathEscape(stage)+"/access-log", limit, follow)
}

// Audit returns the audit log's last limit entries, oldest first.
func (c *Client) Audit(ctx context.Context, limit int) (AuditList, []byte, error) {
	return call[AuditList](ctx, c, http.MethodGet, "/admin/v1/audit?limit="+strconv.Itoa(limit), nil)
}

// Tokens lists the admin tokens (never the tokens themselves).
func (c *Client) Tokens(ctx context.Context) (TokenList, []byte, error) {
	return call[TokenList](ctx, c, http.MethodGet, "/admin/v1/tokens", nil)
}

// CreateToken creates an admin token; the answer holds it, shown this once.
func (c *Client) CreateToken(ctx context.Context, name string) (TokenCreated, []byte, error) {
	return call[TokenCreated](ctx, c, http.MethodPost, "/admin/v1/tokens", TokenRequest{Name: name})
}

// DeleteToken deletes an admin token; it stops working at once.
func (c *Client) DeleteToken(ctx context.Context, name string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, "/admin/v1/tokens/"+url.PathEscape(name), nil, nil)
	return err
}

// Keys lists the API keys (never the keys themselves).
func (c *Client) Keys(ctx context.Context) (KeyList, []byte, error) {
	return call[KeyList](ctx, c, http.MethodGet, "/admin/v1/keys", nil)
}

// CreateKey creates an API key in a usage plan; the answer holds it, shown this once.
func (c *Client) CreateKey(ctx context.Context, name, plan string) (KeyCreated, []byte, error) {
	return call[KeyCreated](ctx, c, http.MethodPost, "/admin/v1/keys", KeyRequest{Name: name, Plan: plan})
}

// DeleteKey deletes an API key; it stops working at once.
func (c *Client) DeleteKey(ctx context.Context, name string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, "/admin/v1/keys/"+url.PathEscape(name), nil, nil)
	return err
}

// ConnectionPath is the admin API path of connection id.
func ConnectionPath(id string) string {
	return "/admin/v1/connections/" + url.PathEscape(id)
}

// Connections lists the node's open WebSocket connections, of one API or of all (""), oldest first.
func (c *Client) Connections(ctx context.Context, api string) (ConnectionList, []byte, error) {
	path := "/admin/v1/connections"
	if api != "" {
		path += "?" + url.Values{"api": {api}}.Encode()
	}
	return call[ConnectionList](ctx, c, http.MethodGet, path, nil)
}

// Connection describes a connection of any node.
func (c *Client) Connection(ctx context.Context, id string) (ConnectionView, []byte, error) {
	return call[ConnectionView](ctx, c, http.MethodGet, ConnectionPath(id), nil)
}

// PostToConnection sends data to a connection of any node, as @connections does: a text frame when
// contentType is text, else a binary one.
func (c *Client) PostToConnection(ctx context.Context, id string, data []byte, contentType string) error {
	resp, err := c.Do(ctx, http.MethodPost, ConnectionPath(id), bytes.NewReader(data), contentType)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// DeleteConnection closes a connection of any node.
func (c *Client) DeleteConnection(ctx context.Context, id string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, ConnectionPath(id), nil, nil)
	return err
}

// Cluster reads the cluster's status.
func (c *Client) Cluster(ctx context.Context) (ClusterStatus, []byte, error) {
	return call[ClusterStatus](ctx, c, http.MethodGet, "/admin/v1/cluster", nil)
}
