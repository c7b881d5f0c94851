package app

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/stackfile"
)

const (
	// uploadTimeout bounds a deploy's upload and answer: a large bundle on a slow link takes a while.
	uploadTimeout = 10 * time.Minute
	// invokeTimeout bounds an invocation: the longest function timeout, plus a margin for the trip.
	invokeTimeout = functions.MaxTimeout + time.Minute
	// maxAnswerBytes bounds a JSON answer the CLI reads.
	maxAnswerBytes = 8 << 20
	// maxErrorBytes bounds the body of a non-2xx answer the CLI reads for its message.
	maxErrorBytes = 64 << 10
	// timeFormat is how tables and log lines show times: fixed width, local time.
	timeFormat = "2006-01-02T15:04:05.000Z07:00"
)

// apiError is a non-2xx answer from the admin API, with the API's message.
type apiError struct {
	method, path string
	status       int
	message      string
}

func (e *apiError) Error() string {
	switch {
	case e.status == http.StatusUnauthorized:
		return "the node refused the admin token: check --token, $GATEHOUSE_TOKEN or the data directory's admin.token"
	case e.status >= 500:
		return fmt.Sprintf("the node failed: %s (HTTP %d)", e.message, e.status)
	}
	return e.message
}

// newRequest makes a request to the admin API carrying the client's token. path may hold a query.
func (c *adminClient) newRequest(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// send sends req with hc (the client's own when nil). A non-2xx answer becomes an *apiError with the
// API's message; the caller closes the body of a 2xx answer.
func (c *adminClient) send(hc *http.Client, req *http.Request) (*http.Response, error) {
	if hc == nil {
		hc = c.http
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the admin API: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var e struct{ Message string }
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return nil, &apiError{method: req.Method, path: req.URL.Path, status: resp.StatusCode, message: e.Message}
}

// doRaw sends a request with the client's own timeout; see send.
func (c *adminClient) doRaw(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	req, err := c.newRequest(ctx, method, path, body, contentType)
	if err != nil {
		return nil, err
	}
	return c.send(nil, req)
}

// doJSON sends body (when not nil) as JSON, decodes a JSON answer into out (when not nil) and returns
// the answer as it came. A non-2xx answer is an *apiError.
func (c *adminClient) doJSON(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := c.doRaw(ctx, method, path, rd, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
		}
	}
	return data, nil
}

// Views of the admin API, with the fields the CLI shows.
type (
	functionView struct {
		Name          string    `json:"name"`
		LatestVersion int       `json:"latestVersion"`
		UpdatedAt     time.Time `json:"updatedAt"`
	}
	versionView struct {
		Version      int       `json:"version"`
		ModuleSHA256 string    `json:"moduleSha256"`
		ModuleSize   int64     `json:"moduleSize"`
		Memory       int       `json:"memory"`
		Timeout      string    `json:"timeout"`
		Description  string    `json:"description"`
		CreatedAt    time.Time `json:"createdAt"`
	}
	aliasView struct {
		Name              string    `json:"name"`
		Version           int       `json:"version"`
		Target            string    `json:"target"`
		AdditionalVersion int       `json:"additionalVersion"`
		AdditionalWeight  float64   `json:"additionalWeight"`
		Description       string    `json:"description"`
		UpdatedAt         time.Time `json:"updatedAt"`
		Revision          int64     `json:"revision"`
	}
	auditEntry struct {
		Time    time.Time `json:"time"`
		Token   string    `json:"token"`
		Address string    `json:"address"`
		Action  string    `json:"action"`
		Target  string    `json:"target"`
		Detail  string    `json:"detail"`
	}
	logRecord struct {
		Time      time.Time `json:"time"`
		Version   int       `json:"version"`
		RequestID string    `json:"requestId"`
		Stream    string    `json:"stream"`
		Message   string    `json:"message"`
	}
)

// aliasRequest is the body of PUT …/aliases/{alias}.
type aliasRequest struct {
	Version           int     `json:"version"`
	AdditionalVersion int     `json:"additionalVersion"`
	AdditionalWeight  float64 `json:"additionalWeight"`
	Description       string  `json:"description"`
	Revision          int64   `json:"revision"`
}

// newFunctionCommands returns the commands that manage and call the functions of a running node.
func newFunctionCommands(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		newDeployCommand(stdout, stderr),
		newFunctionsCommand(stdout),
		newVersionsCommand(stdout),
		newAliasCommand(stdout),
		newInvokeCommand(stdout, stderr),
		newLogsCommand(stdout, stderr),
		newRmCommand(stdout),
		newAuditCommand(stdout),
	}
}

func newDeployCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var alias, description, stackFile string
	cmd := &cobra.Command{
		Use:   "deploy DIR|BUNDLE.zip",
		Short: "Deploy a function: build DIR into a bundle and upload it, or upload BUNDLE.zip",
		Long: `Deploy a function to a running node. A directory is built first, as gatehouse build does; a .zip
bundle is uploaded as it is. Deploying the same module and manifest as the newest version changes
nothing. With --alias, the alias is pointed at the deployed version.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			info, err := os.Stat(src)
			if err != nil {
				return err
			}
			if !info.IsDir() && (!info.Mode().IsRegular() || !strings.EqualFold(filepath.Ext(src), ".zip")) {
				return fmt.Errorf("%s is neither a function directory nor a bundle: deploy a directory, or a .zip made by `gatehouse build`", src)
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			bundle := src
			if info.IsDir() {
				tmp, err := os.MkdirTemp("", "gatehouse-deploy-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				// With --json, stdout is for the answer only.
				progress := stdout
				if flags.json {
					progress = stderr
				}
				name := filepath.Base(filepath.Clean(src))
				if abs, err := filepath.Abs(src); err == nil {
					name = filepath.Base(abs)
				}
				seed, err := stackSettings(src, stackFile, cmd.Flags().Changed("file"), progress)
				if err != nil {
					return err
				}
				if seed != nil {
					name = seed.Name
				}
				if bundle, err = buildBundle(cmd.Context(), src, filepath.Join(tmp, name+".zip"), flags.dataDir, progress, seed); err != nil {
					return err
				}
			}
			return deploy(cmd.Context(), c, bundle, alias, description, flags.json, stdout)
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVar(&alias, "alias", "", "point this alias at the deployed version")
	cmd.Flags().StringVarP(&stackFile, "file", "f", DefaultStackFile, "the stack file whose settings a function directory it defines is deployed with")
	cmd.Flags().StringVar(&description, "description", "", "the new version's description")
	return cmd
}

// deploy uploads the bundle at path and prints the answer.
// stackSettings returns the manifest the stack file gives the function whose source is dir, or nil
// when the stack file defines none (or there is no stack file, unless it was asked for by name). It
// says on progress which settings the version gets.
func stackSettings(dir, stackFile string, named bool, progress io.Writer) (*functions.Manifest, error) {
	if _, err := os.Stat(filepath.Join(dir, functions.ManifestFile)); err == nil {
		return nil, nil // the directory's own manifest decides
	}
	if _, err := os.Stat(stackFile); errors.Is(err, os.ErrNotExist) && !named {
		return nil, nil
	}
	stack, err := stackfile.Load(stackFile)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for name, fn := range stack.Functions {
		if fn.Source != filepath.Clean(abs) {
			continue
		}
		m := stackManifest(name, fn)
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%s: function %s: %w", stackFile, name, err)
		}
		env := slices.Sorted(maps.Keys(m.Environment))
		fmt.Fprintf(progress, "  %-16s settings from %s: timeout %s, memory %d MB, environment %s\n", name, stackFile,
			m.Timeout, m.MemoryMB, cmp.Or(strings.Join(env, ", "), "(none)"))
		return &m, nil
	}
	return nil, nil
}

func deploy(ctx context.Context, c *adminClient, path, alias, description string, asJSON bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	q := url.Values{}
	if alias != "" {
		q.Set("alias", alias)
	}
	if description != "" {
		q.Set("description", description)
	}
	target := "/admin/v1/functions"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, http.MethodPost, target, f, "application/zip")
	if err != nil {
		return err
	}
	// The node checks the size before reading the bundle.
	req.ContentLength = info.Size()
	start := time.Now()
	resp, err := c.send(&http.Client{Timeout: uploadTimeout}, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	elapsed := time.Since(start)
	if asJSON {
		return printJSON(stdout, data)
	}
	var out struct {
		Function string      `json:"function"`
		Created  bool        `json:"created"`
		Version  versionView `json:"version"`
		Alias    *aliasView  `json:"alias"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("POST /admin/v1/functions: unexpected answer: %w", err)
	}
	if out.Created {
		fmt.Fprintf(stdout, "deployed %s version %d (module %s, %s) in %.1fs\n", out.Function, out.Version.Version,
			abbrev(out.Version.ModuleSHA256, 12), humanSize(out.Version.ModuleSize), elapsed.Seconds())
	} else {
		fmt.Fprintf(stdout, "%s is unchanged: version %d (same module and manifest)\n", out.Function, out.Version.Version)
	}
	if out.Alias != nil {
		fmt.Fprintf(stdout, "alias %s → %s\n", out.Alias.Name, aliasRoute(*out.Alias))
	}
	return nil
}

func newFunctionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "functions",
		Short: "List the deployed functions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return callAndShow(cmd, &flags, stdout, http.MethodGet, "/admin/v1/functions", nil, func(out struct {
				Functions []functionView `json:"functions"`
			}) error {
				t := newTable(stdout, "NAME", "LATEST", "UPDATED")
				for _, f := range out.Functions {
					t.row(f.Name, f.LatestVersion, showTime(f.UpdatedAt))
				}
				return t.flush()
			})
		},
	}
	flags.register(cmd)
	return cmd
}

func newVersionsCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "versions FN",
		Short: "List a function's versions, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndShow(cmd, &flags, stdout, http.MethodGet, functionPath(args[0], "versions"), nil, func(out struct {
				Versions []versionView `json:"versions"`
			}) error {
				t := newTable(stdout, "VERSION", "MODULE", "SIZE", "MEMORY", "TIMEOUT", "CREATED", "DESCRIPTION")
				for _, v := range out.Versions {
					t.row(v.Version, prefix(v.ModuleSHA256, 12), humanSize(v.ModuleSize), fmt.Sprintf("%d MB", v.Memory),
						v.Timeout, showTime(v.CreatedAt), v.Description)
				}
				return t.flush()
			})
		},
	}
	flags.register(cmd)
	return cmd
}

func newAliasCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var weight, description string
	cmd := &cobra.Command{Use: "alias", Short: "Manage a function's aliases (names for versions)"}
	set := &cobra.Command{
		Use:   "set FN NAME VERSION",
		Short: "Point an alias at a version (a number or $LATEST), optionally sharing traffic with another",
		Long: `Point the alias NAME of function FN at VERSION: a version number, or $LATEST (quote it so the shell
leaves it alone: '$LATEST'). With --weight V2=W, the share W (0 to 1) of the alias's requests goes to
version V2 instead: --weight 4=0.1 sends 10% to version 4.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := parseAliasTarget(args[2], weight)
			if err != nil {
				return err
			}
			body.Description = description
			return callAndShow(cmd, &flags, stdout, http.MethodPut, functionPath(args[0], "aliases", args[1]), body, func(out aliasView) error {
				fmt.Fprintf(stdout, "alias %s:%s → %s (revision %d)\n", args[0], out.Name, aliasRoute(out), out.Revision)
				return nil
			})
		},
	}
	set.Flags().StringVar(&weight, "weight", "", "send a share of requests to another version: V2=W, W from 0 to 1 (e.g. 4=0.1)")
	set.Flags().StringVar(&description, "description", "", "the alias's description")
	ls := &cobra.Command{
		Use:   "ls FN",
		Short: "List a function's aliases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndShow(cmd, &flags, stdout, http.MethodGet, functionPath(args[0], "aliases"), nil, func(out struct {
				Aliases []aliasView `json:"aliases"`
			}) error {
				t := newTable(stdout, "NAME", "VERSION", "ROUTING", "REVISION", "UPDATED", "DESCRIPTION")
				for _, a := range out.Aliases {
					routing := "-"
					if a.AdditionalVersion != 0 && a.AdditionalWeight > 0 {
						routing = fmt.Sprintf("%s%% to %d", percent(a.AdditionalWeight), a.AdditionalVersion)
					}
					t.row(a.Name, aliasTarget(a), routing, a.Revision, showTime(a.UpdatedAt), a.Description)
				}
				return t.flush()
			})
		},
	}
	rm := &cobra.Command{
		Use:   "rm FN NAME",
		Short: "Delete an alias",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, functionPath(args[0], "aliases", args[1]), "deleted alias %s:%s", args[0], args[1])
		},
	}
	for _, c := range []*cobra.Command{set, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// parseAliasTarget reads alias set's VERSION argument and --weight flag (empty when not given).
func parseAliasTarget(version, weight string) (aliasRequest, error) {
	var r aliasRequest
	switch {
	case version == "$LATEST":
	case version == "":
		return r, errors.New("VERSION is empty: give a version number or $LATEST (in single quotes, '$LATEST', so the shell leaves it alone)")
	default:
		n, err := strconv.Atoi(version)
		if err != nil || n < 1 {
			return r, fmt.Errorf("VERSION %q: want a version number (1, 2, …) or $LATEST", version)
		}
		r.Version = n
	}
	if weight == "" {
		return r, nil
	}
	v2, w, ok := strings.Cut(weight, "=")
	if !ok {
		return r, fmt.Errorf("--weight %q: want VERSION=WEIGHT, e.g. 4=0.1 to send 10%% of requests to version 4", weight)
	}
	n, err := strconv.Atoi(v2)
	if err != nil || n < 1 {
		return r, fmt.Errorf("--weight %q: %q is not a version number (want 1, 2, …)", weight, v2)
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		return r, fmt.Errorf("--weight %q: the weight %q must be a number from 0 to 1 (0.1 sends 10%% of requests to version %d)", weight, w, n)
	}
	if n == r.Version {
		return r, fmt.Errorf("--weight %q: version %d is the alias's version already; give another version, or leave out --weight", weight, n)
	}
	r.AdditionalVersion, r.AdditionalWeight = n, f
	return r, nil
}

func newInvokeCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var payload string
	cmd := &cobra.Command{
		Use:   "invoke FN[:QUALIFIER]",
		Short: "Invoke a function and print its output",
		Long: `Invoke function FN (its $LATEST version, or QUALIFIER: a version number, $LATEST or an alias) with
the payload, and print the function's output. A function error is printed to stderr and exits non-zero.
With --json, print {"version":N,"output":…,"error":…}.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, qualifier, hasQualifier := strings.Cut(args[0], ":")
			if hasQualifier && qualifier == "" {
				return fmt.Errorf("%s: the qualifier after : is empty; give a version, $LATEST or an alias, or leave out the colon", args[0])
			}
			event, err := readPayload(payload, cmd.InOrStdin())
			if err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			path := functionPath(name, "invocations")
			if hasQualifier {
				path += "?" + url.Values{"qualifier": {qualifier}}.Encode()
			}
			contentType := "application/octet-stream"
			if json.Valid(event) {
				contentType = "application/json"
			}
			req, err := c.newRequest(cmd.Context(), http.MethodPost, path, bytes.NewReader(event), contentType)
			if err != nil {
				return err
			}
			resp, err := c.send(&http.Client{Timeout: invokeTimeout}, req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			output, err := io.ReadAll(resp.Body)
			if err != nil {
				return fmt.Errorf("reading the function's output: %w", err)
			}
			version, _ := strconv.Atoi(resp.Header.Get("X-Gatehouse-Executed-Version"))
			var fnErr error
			if kind := resp.Header.Get("X-Gatehouse-Function-Error"); kind != "" {
				var e struct {
					ErrorType, ErrorMessage string
					StackTrace              []string
				}
				if json.Unmarshal(output, &e) != nil || e.ErrorType == "" {
					e.ErrorType, e.ErrorMessage = kind, strings.TrimSpace(string(output))
				}
				msg := fmt.Sprintf("function error: %s: %s", e.ErrorType, e.ErrorMessage)
				for _, frame := range e.StackTrace {
					msg += "\n\t" + strings.ReplaceAll(strings.TrimSpace(frame), "\n", "\n\t")
				}
				fnErr = errors.New(msg)
			}
			if flags.json {
				res := struct {
					Version int             `json:"version"`
					Output  json.RawMessage `json:"output"`
					Error   json.RawMessage `json:"error"`
				}{Version: version, Output: json.RawMessage("null"), Error: json.RawMessage("null")}
				if fnErr != nil {
					res.Error = asJSONValue(output)
				} else {
					res.Output = asJSONValue(output)
				}
				enc := json.NewEncoder(stdout)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(res); err != nil {
					return err
				}
				return fnErr
			}
			w := stdout
			if fnErr != nil {
				w = stderr
			}
			if len(output) > 0 {
				if err := printJSON(w, output); err != nil {
					return err
				}
			}
			return fnErr
		},
	}
	flags.register(cmd)
	cmd.Flags().StringVarP(&payload, "payload", "p", "{}", "the event: JSON, @FILE for a file's contents, or - for standard input")
	return cmd
}

// readPayload reads invoke's --payload: inline JSON (checked), @FILE, or - for stdin.
func readPayload(payload string, stdin io.Reader) ([]byte, error) {
	switch {
	case payload == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the payload from standard input: %w", err)
		}
		return b, nil
	case strings.HasPrefix(payload, "@"):
		b, err := os.ReadFile(payload[1:])
		if err != nil {
			return nil, fmt.Errorf("reading the payload: %w", err)
		}
		return b, nil
	}
	var v any
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		return nil, fmt.Errorf("--payload is not valid JSON (%v): quote it for the shell, e.g. --payload '{\"name\":\"world\"}', or pass @FILE or - for standard input", err)
	}
	return []byte(payload), nil
}

func newLogsCommand(stdout, stderr io.Writer) *cobra.Command {
	var flags adminFlags
	var follow bool
	var limit int
	cmd := &cobra.Command{
		Use:   "logs FN",
		Short: "Print a function's recent log records; with -f, keep printing new ones",
		Long: `Print function FN's last log records, oldest first. With -f, keep printing new records as they
arrive until Ctrl-C. With --json, print the records as the API sends them, one JSON object a line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: want at least 1", limit)
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			hc := c.http
			if follow {
				q.Set("follow", "true")
				hc = &http.Client{} // the stream lasts until Ctrl-C
			}
			req, err := c.newRequest(ctx, http.MethodGet, functionPath(args[0], "logs")+"?"+q.Encode(), nil, "")
			if err != nil {
				return err
			}
			resp, err := c.send(hc, req)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			defer resp.Body.Close()
			n, err := printLogStream(stdout, resp.Body, flags.json)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("reading the log stream: %w", err)
			}
			if n == 0 && !follow && !flags.json {
				fmt.Fprintf(stderr, "no log records for %s: it has not written any yet (or they have expired)\n", args[0])
			}
			return nil
		},
	}
	flags.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records until Ctrl-C")
	cmd.Flags().IntVar(&limit, "limit", 100, "how many of the last records to print (at most 10000)")
	return cmd
}

// printLogStream prints the NDJSON log records read from r until it ends, skipping blank keep-alive
// lines: as they are with raw, else one aligned line each. It returns how many it printed.
func printLogStream(w io.Writer, r io.Reader, raw bool) (int, error) {
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			n++
			var rec logRecord
			if raw || json.Unmarshal(line, &rec) != nil {
				_, werr := fmt.Fprintf(w, "%s\n", line)
				if werr != nil {
					return n, werr
				}
			} else if _, werr := fmt.Fprintf(w, "%s %-4s %-8s %-6s  %s\n", rec.Time.Local().Format(timeFormat),
				"v"+strconv.Itoa(rec.Version), prefix(rec.RequestID, 8),
				rec.Stream, strings.TrimRight(rec.Message, "\r\n")); werr != nil {
				return n, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func newRmCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "rm FN",
		Short: "Delete a function with all its versions and aliases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, functionPath(args[0]), "deleted function %s (all versions and aliases)", args[0])
		},
	}
	flags.register(cmd)
	return cmd
}

func newAuditCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Print the audit log: who deployed, deleted or changed what, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return fmt.Errorf("--limit %d: want at least 1", limit)
			}
			return callAndShow(cmd, &flags, stdout, http.MethodGet, "/admin/v1/audit?limit="+strconv.Itoa(limit), nil, func(out struct {
				Entries []auditEntry `json:"entries"`
			}) error {
				t := newTable(stdout, "TIME", "TOKEN", "ADDRESS", "ACTION", "TARGET", "DETAIL")
				for _, e := range out.Entries {
					t.row(showTime(e.Time), e.Token, e.Address, e.Action, e.Target, e.Detail)
				}
				return t.flush()
			})
		},
	}
	flags.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "how many of the last entries to print (at most 10000)")
	return cmd
}

// functionPath is the admin API path of function name, or of elems under it, each path-escaped.
func functionPath(name string, elems ...string) string {
	p := "/admin/v1/functions/" + url.PathEscape(name)
	for _, e := range elems {
		p += "/" + url.PathEscape(e)
	}
	return p
}

// printJSON writes an answer as it came, ending in a newline.
func printJSON(w io.Writer, data []byte) error {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n')
	}
	_, err := w.Write(data)
	return err
}

// printJSONOr returns err, or prints data when err is nil.
// callAndShow calls the admin API and prints its answer: as received with --json, else decoded into
// T and given to show.
func callAndShow[T any](cmd *cobra.Command, flags *adminFlags, stdout io.Writer, method, path string, body any, show func(T) error) error {
	c, err := flags.client()
	if err != nil {
		return err
	}
	var out T
	data, err := c.doJSON(cmd.Context(), method, path, body, &out)
	if err != nil || flags.json {
		return printJSONOr(stdout, data, err)
	}
	return show(out)
}

// deleteAndSay calls DELETE path on the admin API and, without --json, prints format with args and
// a newline.
func deleteAndSay(cmd *cobra.Command, flags *adminFlags, stdout io.Writer, path, format string, args ...any) error {
	c, err := flags.client()
	if err != nil {
		return err
	}
	if _, err := c.doJSON(cmd.Context(), http.MethodDelete, path, nil, nil); err != nil {
		return err
	}
	if !flags.json {
		fmt.Fprintf(stdout, format+"\n", args...)
	}
	return nil
}

func printJSONOr(w io.Writer, data []byte, err error) error {
	if err != nil {
		return err
	}
	return printJSON(w, data)
}

// asJSONValue is b when it is JSON, else b as a JSON string.
func asJSONValue(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// aliasTarget is the version an alias points at: a number or $LATEST.
func aliasTarget(a aliasView) string {
	switch {
	case a.Target != "":
		return a.Target
	case a.Version == 0:
		return "$LATEST"
	}
	return strconv.Itoa(a.Version)
}

// aliasRoute describes where an alias sends requests: "3", or "3, 10% to version 4".
func aliasRoute(a aliasView) string {
	s := aliasTarget(a)
	if a.AdditionalVersion != 0 && a.AdditionalWeight > 0 {
		s += fmt.Sprintf(", %s%% to version %d", percent(a.AdditionalWeight), a.AdditionalVersion)
	}
	return s
}

// percent shows a weight from 0 to 1 as a percentage without float noise: 0.07 is "7".
func percent(w float64) string {
	return strconv.FormatFloat(w*100, 'g', 4, 64)
}

// abbrev is s cut to n characters and an ellipsis when longer.
func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// prefix is s cut to n bytes.
func prefix(s string, n int) string {
	return s[:min(n, len(s))]
}

// humanSize shows a byte count in decimal units: 5700486 is "5.7 MB".
func humanSize(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d B", n)
	case n < 1000*1000:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	case n < 1000*1000*1000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1f GB", float64(n)/1e9)
}

// showTime is t in local time for a table, or "-" when not set.
func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// table writes aligned columns under a header.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	cells := make([]any, len(header))
	for i, h := range header {
		cells[i] = h
	}
	t.row(cells...)
	return t
}

// row writes one row; tabs and line breaks in a cell become spaces.
func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, fmt.Sprint(c))
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }
