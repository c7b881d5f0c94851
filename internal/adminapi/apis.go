package adminapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// APIView is an API definition as the admin API shows it: GET /admin/v1/apis/{name}, and the answer
// to PUT.
type APIView struct {
	// Name is the API's name, unique in the stack.
	Name string `json:"name"`
	// ID is the API's immutable id: 10 lower-case letters and digits.
	ID string `json:"id"`
	// ManagedBy says what wrote the definition last: "stack-file" or "admin-api".
	ManagedBy string `json:"managedBy"`
	// Source says more: the stack file's name, or the name of the admin token.
	Source string `json:"source,omitempty"`
	// Revision is the definition's revision; PUT and DELETE take it in If-Match to change only
	// that revision.
	Revision  uint64    `json:"revision"`
	Hash      string    `json:"hash"`
	UpdatedAt time.Time `json:"updatedAt"`
	// API is the definition, with the stack file's keys: PUT accepts it back as it is.
	API spec.API `json:"api"`
}

// APIList answers GET /admin/v1/apis.
type APIList struct {
	APIs []APIView `json:"apis"`
}

// Problem is one problem with a definition sent to the admin API.
type Problem struct {
	// Path is the key path of the value, such as `routes["GET /x"].integration.target`.
	Path string `json:"path,omitempty"`
	// Line and Column place it in the body as sent (1-based; 0 when unknown).
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// ProblemsView answers a definition refused with 400: every problem at once.
type ProblemsView struct {
	Message  string    `json:"message"`
	Problems []Problem `json:"problems"`
}

// ReloadView answers POST /admin/v1/reload: what re-reading the stack file changed.
type ReloadView struct {
	// File is the stack file read.
	File string `json:"file"`
	// Functions lists the functions deployed because their source or settings changed.
	Functions []string `json:"functionsDeployed"`
	// APIs says what happened to each API the file defines, or defined.
	APIs APIChanges `json:"apis"`
	// Restart lists the changes that take effect only on the next start, such as iam or usagePlans.
	Restart []string `json:"needsRestart,omitempty"`
}

// APIChanges says what applying a stack file did to its APIs, by name.
type APIChanges struct {
	Created   []string `json:"created,omitempty"`
	Updated   []string `json:"updated,omitempty"`
	Deleted   []string `json:"deleted,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	// Drift lists the APIs changed through the admin API since the file last set them: they keep
	// that change until the file's own definition of them changes.
	Drift []string `json:"drift,omitempty"`
	// Replaced lists the APIs whose change through the admin API the file's new definition replaced.
	Replaced []string `json:"replaced,omitempty"`
}

// Summary describes the reload in a few lines, for people.
func (r ReloadView) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reloaded %s\n", r.File)
	line := func(what string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(&b, "  %-22s %s\n", what, strings.Join(names, ", "))
		}
	}
	line("functions deployed:", r.Functions)
	line("APIs created:", r.APIs.Created)
	line("APIs updated:", r.APIs.Updated)
	line("APIs deleted:", r.APIs.Deleted)
	line("APIs kept as edited:", r.APIs.Drift)
	line("edits replaced:", r.APIs.Replaced)
	if len(r.Functions)+len(r.APIs.Created)+len(r.APIs.Updated)+len(r.APIs.Deleted) == 0 {
		b.WriteString("  nothing changed\n")
	}
	if len(r.APIs.Drift) > 0 {
		b.WriteString("  (APIs kept as edited were changed through the admin API since the file set them; edit them in the file to replace them)\n")
	}
	line("needs a restart:", r.Restart)
	return b.String()
}

// APIPath is the admin API path of the API definition name.
func APIPath(name string) string { return "/admin/v1/apis/" + url.PathEscape(name) }

// APIs lists the stack's API definitions.
func (c *Client) APIs(ctx context.Context) (APIList, []byte, error) {
	return call[APIList](ctx, c, http.MethodGet, "/admin/v1/apis", nil)
}

// API returns one API definition.
func (c *Client) API(ctx context.Context, name string) (APIView, []byte, error) {
	return call[APIView](ctx, c, http.MethodGet, APIPath(name), nil)
}

// PutAPI creates or replaces the API name from def, its definition as JSON (or YAML, with
// contentType application/yaml); with revision other than 0, only if the API is still at it. A
// refused definition is an *Error whose Problems are all of its problems.
func (c *Client) PutAPI(ctx context.Context, name string, def []byte, contentType string, revision uint64) (APIView, []byte, error) {
	req, err := c.NewRequest(ctx, http.MethodPut, APIPath(name), bytes.NewReader(def), contentType)
	if err != nil {
		return APIView{}, nil, err
	}
	if revision != 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatUint(revision, 10)))
	}
	resp, err := c.Send(req, orDefault(c.Timeout, DefaultTimeout))
	if err != nil {
		return APIView{}, nil, err
	}
	defer resp.Body.Close()
	var v APIView
	raw, err := readAnswer(resp, &v)
	return v, raw, err
}

// DeleteAPI deletes the API name.
func (c *Client) DeleteAPI(ctx context.Context, name string) error {
	_, err := c.DoJSON(ctx, http.MethodDelete, APIPath(name), nil, nil)
	return err
}

// Reload has the node re-read its stack file and apply what changed.
func (c *Client) Reload(ctx context.Context) (ReloadView, []byte, error) {
	return call[ReloadView](ctx, c, http.MethodPost, "/admin/v1/reload", nil)
}
