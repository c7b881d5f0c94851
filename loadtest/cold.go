package loadtest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// Limits and defaults of a cold-start run.
const (
	DefaultColdFunctions = 10
	MaxColdFunctions     = 1000
	DefaultColdPrefix    = "coldtest-"
	DefaultColdDuration  = 5 * time.Minute
	// DefaultColdTimeout bounds each admin request; a deploy answers only once every worker has
	// loaded the new function, which can take a while.
	DefaultColdTimeout = 3 * time.Minute
	// cleanupTimeout bounds deleting the deployed functions at the end, even after the run was
	// cancelled.
	cleanupTimeout = time.Minute
)

// ColdConfig describes one cold-start run: deploy Functions copies of Bundle under distinct names
// through the admin API, invoke each once right after its deploy (a cold start: it was never
// invoked and has no warm instance), optionally once more (warm), and delete them at the end.
type ColdConfig struct {
	Admin     string // admin API URL, such as http://127.0.0.1:8081
	Token     string // admin bearer token
	Bundle    []byte // the bundle (zip) to copy
	Functions int
	Prefix    string // name prefix of the copies
	Payload   []byte // invocation event (default {})
	Warm      bool   // also invoke each function a second time
	Keep      bool   // keep the functions instead of deleting them
	Duration  time.Duration
	Timeout   time.Duration // per admin request

	Progress        io.Writer
	ProgressInPlace bool
}

func (c *ColdConfig) normalize() error {
	if c.Functions == 0 {
		c.Functions = DefaultColdFunctions
	}
	if c.Functions < 0 || c.Functions > MaxColdFunctions {
		return fmt.Errorf("functions %d is out of range [1, %d]", c.Functions, MaxColdFunctions)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultColdPrefix
	}
	if c.Payload == nil {
		c.Payload = []byte("{}")
	}
	if c.Duration == 0 {
		c.Duration = DefaultColdDuration
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return fmt.Errorf("duration %s is out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultColdTimeout
	}
	if c.Token == "" {
		return errors.New("no admin token")
	}
	if len(c.Bundle) == 0 {
		return errors.New("no bundle")
	}
	return nil
}

// ColdFunction is what happened to one deployed copy.
type ColdFunction struct {
	Name     string  `json:"name"`
	Version  int     `json:"version"`
	DeployMS float64 `json:"deploy_ms"`
	FirstMS  float64 `json:"first_ms,omitempty"`
	WarmMS   float64 `json:"warm_ms,omitempty"`
	Deleted  bool    `json:"deleted"`
	// uncertain is set when the deploy failed in a way that may still have created the function.
	uncertain bool
}

// ColdResult is the outcome of a cold-start run.
type ColdResult struct {
	Admin     string
	Bundle    string // the source function's name
	Elapsed   time.Duration
	Asked     int
	Deployed  int
	Deploy    *Hist // deploy request until its answer
	First     *Hist // first invocations that answered (a function error included)
	WarmRun   bool
	Warm      *Hist
	Deleted   int
	Kept      bool
	Functions []ColdFunction
	// Errors counts failures by step and kind ("deploy: status 400", "invoke: function error", …).
	Errors map[string]int64
}

// ErrorCount is the number of failures.
func (r *ColdResult) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// RenameBundle returns a copy of a bundle whose manifest names the function name and keeps no
// instance warm (minWarm 0), so that the copy's first invocation is a cold start. Every other entry
// is copied unchanged.
func RenameBundle(bundle []byte, name string) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle: %w", err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	found := false
	for _, f := range zr.File {
		if f.Name != functions.ManifestFile {
			if err := zw.Copy(f); err != nil {
				return nil, fmt.Errorf("copying %s: %w", f.Name, err)
			}
			continue
		}
		found = true
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Name, err)
		}
		m, err := functions.ParseManifest(data)
		if err != nil {
			return nil, err
		}
		m.Name = name
		m.MinWarm = 0
		manifest, err := m.Marshal()
		if err != nil {
			return nil, err
		}
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: f.Modified}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(manifest); err != nil {
			return nil, err
		}
	}
	if !found {
		return nil, fmt.Errorf("the bundle has no %s at its top", functions.ManifestFile)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// AdminToken finds the admin token as the gatehouse command line does: token when given, then
// $GATEHOUSE_TOKEN, then dataDir's admin.token.
func AdminToken(token, dataDir string) (string, error) {
	if token != "" {
		return token, nil
	}
	if t := os.Getenv("GATEHOUSE_TOKEN"); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(adminapi.TokenPath(dataDir))
	if err != nil {
		return "", errors.New("no admin token: pass --token, set GATEHOUSE_TOKEN, or pass --data with the node's data directory (its admin.token)")
	}
	return strings.TrimSpace(string(b)), nil
}

// AdminURL reads the admin API's address from a running node's data directory.
func AdminURL(dataDir string) (string, error) {
	url, err := adminapi.ReadAddress(dataDir)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "", fmt.Errorf("no admin URL given and no running node found in %s: %w", dataDir, err)
	}
	return url, err
}

type coldRunner struct {
	cfg   ColdConfig
	admin *adminapi.Client
	res   *ColdResult
}

// failed records a failed step: an answer other than 2xx (by its status), or a transport error.
func (r *coldRunner) failed(step string, err error) {
	kind := errorKind(err)
	if status := adminapi.StatusOf(err); status != 0 {
		kind = "status " + strconv.Itoa(status)
	}
	r.res.Errors[step+": "+kind]++
}

// RunCold runs a cold-start test as cfg describes. ctx ends it early; the functions deployed so far
// are deleted either way (unless cfg.Keep).
func RunCold(ctx context.Context, cfg ColdConfig) (*ColdResult, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	u, err := CheckTarget(ctx, cfg.Admin)
	if err != nil {
		return nil, err
	}
	src, err := functions.ReadBundle(bytes.NewReader(cfg.Bundle), int64(len(cfg.Bundle)), functions.BundleLimits{})
	if err != nil {
		return nil, err
	}
	var rid [3]byte
	_, _ = rand.Read(rid[:])
	runID := hex.EncodeToString(rid[:])
	width := len(strconv.Itoa(cfg.Functions - 1))
	names := make([]string, cfg.Functions)
	bundles := make([][]byte, cfg.Functions)
	for i := range names {
		names[i] = fmt.Sprintf("%s%s-%0*d", cfg.Prefix, runID, width, i)
		b, err := RenameBundle(cfg.Bundle, names[i])
		if err != nil {
			return nil, fmt.Errorf("copying the bundle as %s: %w", names[i], err)
		}
		bundles[i] = b
	}

	hc := &http.Client{
		Transport: &http.Transport{
			Proxy:       nil,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	admin := adminapi.New(u.String(), cfg.Token)
	admin.HTTP = hc
	admin.Timeout, admin.UploadTimeout, admin.InvokeTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout
	r := &coldRunner{
		cfg:   cfg,
		admin: admin,
		res: &ColdResult{
			Admin: strings.TrimSuffix(u.String(), "/"), Bundle: src.Manifest.Name, Asked: cfg.Functions,
			Deploy: NewHist(3), First: NewHist(3), Warm: NewHist(3), WarmRun: cfg.Warm, Kept: cfg.Keep,
			Errors: map[string]int64{},
		},
	}
	defer hc.CloseIdleConnections()
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancel()

	for i, name := range names {
		if runCtx.Err() != nil {
			break
		}
		f := ColdFunction{Name: name}
		deployed := r.deploy(runCtx, &f, bundles[i])
		if deployed {
			r.res.Functions = append(r.res.Functions, f)
			fp := &r.res.Functions[len(r.res.Functions)-1]
			if d, ok := r.invoke(runCtx, name, "first"); ok {
				r.res.First.Record(d)
				fp.FirstMS = ms(d)
			}
			if cfg.Warm {
				if d, ok := r.invoke(runCtx, name, "warm"); ok {
					r.res.Warm.Record(d)
					fp.WarmMS = ms(d)
				}
			}
		}
		if cfg.Progress != nil {
			line := fmt.Sprintf("%6s  %d/%d deployed  first invocation p50 %s max %s  errors %d",
				time.Since(start).Truncate(time.Second), r.res.Deployed, cfg.Functions,
				FormatDuration(r.res.First.Quantile(0.5)), FormatDuration(r.res.First.Max()), r.res.ErrorCount())
			if cfg.ProgressInPlace {
				fmt.Fprintf(cfg.Progress, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(cfg.Progress, line)
			}
		}
	}
	if cfg.Progress != nil && cfg.ProgressInPlace {
		fmt.Fprintln(cfg.Progress)
	}

	if !cfg.Keep {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		for i := range r.res.Functions {
			f := &r.res.Functions[i]
			err := r.admin.DeleteFunction(cleanCtx, f.Name)
			if f.uncertain && adminapi.StatusOf(err) == http.StatusNotFound {
				continue // the failed deploy did not create it
			}
			if err != nil {
				r.failed("delete", err)
				continue
			}
			f.Deleted = true
			r.res.Deleted++
		}
	}
	r.res.Elapsed = time.Since(start)
	return r.res, nil
}

// deploy uploads one copy; it reports whether the function now exists.
func (r *coldRunner) deploy(ctx context.Context, f *ColdFunction, bundle []byte) bool {
	s := time.Now()
	answer, _, err := r.admin.Deploy(ctx, bytes.NewReader(bundle), int64(len(bundle)), adminapi.DeployOptions{Description: "gatehouse loadtest cold"})
	d := time.Since(s)
	if err != nil {
		r.failed("deploy", err)
		// A deploy that timed out or whose version was stored but not loaded may have created the
		// function: delete it too.
		if status := adminapi.StatusOf(err); status == 0 || status == http.StatusInternalServerError {
			f.uncertain = true
			r.res.Functions = append(r.res.Functions, *f)
		}
		return false
	}
	if !answer.Created {
		// The function existed with the same bundle, so it may have run before: no cold start to
		// measure, and not this run's to delete.
		r.res.Errors["deploy: function existed (200 unchanged)"]++
		return false
	}
	f.Version = answer.Version.Version
	f.DeployMS = ms(d)
	r.res.Deploy.Record(d)
	r.res.Deployed++
	return true
}

// invoke runs the function once through the admin API and returns how long the call took.
func (r *coldRunner) invoke(ctx context.Context, name, which string) (time.Duration, bool) {
	s := time.Now()
	inv, err := r.admin.Invoke(ctx, name, "", r.cfg.Payload)
	d := time.Since(s)
	if err != nil {
		r.failed("invoke "+which, err)
		return 0, false
	}
	if inv.Error != nil {
		r.res.Errors["invoke "+which+": function error"]++
	}
	return d, true
}

// WriteText writes a human-readable summary.
func (r *ColdResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "admin      %s\n", r.Admin)
	fmt.Fprintf(&b, "bundle     %s, deployed as %d copies\n", r.Bundle, r.Deployed)
	fmt.Fprintf(&b, "elapsed    %s\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "deployed   %d of %d\n", r.Deployed, r.Asked)
	if r.Deploy.Count() > 0 {
		fmt.Fprintf(&b, "deploy     %s\n", shortQuantiles(r.Deploy))
	}
	fmt.Fprintf(&b, "first      %d invocations", r.First.Count())
	if r.First.Count() > 0 {
		fmt.Fprintf(&b, ": %s", shortQuantiles(r.First))
	}
	b.WriteString("\n")
	if r.WarmRun {
		fmt.Fprintf(&b, "warm       %d invocations", r.Warm.Count())
		if r.Warm.Count() > 0 {
			fmt.Fprintf(&b, ": %s", shortQuantiles(r.Warm))
		}
		b.WriteString("\n")
	}
	if r.Kept {
		fmt.Fprintf(&b, "kept       %d functions (--keep)\n", len(r.Functions))
	} else {
		fmt.Fprintf(&b, "deleted    %d of %d\n", r.Deleted, len(r.Functions))
	}
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "error      %s: %d\n", k, r.Errors[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shortQuantiles(h *Hist) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  mean %s", FormatDuration(h.Quantile(0.5)), FormatDuration(h.Quantile(0.9)),
		FormatDuration(h.Quantile(0.99)), FormatDuration(h.Max()), FormatDuration(h.Mean()))
}

// ColdSummary is the --json output of `loadtest cold`.
type ColdSummary struct {
	Admin      string             `json:"admin"`
	Bundle     string             `json:"bundle"`
	ElapsedS   float64            `json:"elapsed_s"`
	Asked      int                `json:"asked"`
	Deployed   int                `json:"deployed"`
	DeployMS   map[string]float64 `json:"deploy_ms"`
	Invoked    int64              `json:"first_invocations"`
	FirstMS    map[string]float64 `json:"first_ms"`
	Warm       int64              `json:"warm_invocations"`
	WarmMS     map[string]float64 `json:"warm_ms,omitempty"`
	Deleted    int                `json:"deleted"`
	Kept       bool               `json:"kept"`
	Errors     int64              `json:"errors"`
	ErrorKinds map[string]int64   `json:"error_kinds"`
	Functions  []ColdFunction     `json:"functions"`
}

// Summary returns the JSON form of the result.
func (r *ColdResult) Summary() ColdSummary {
	s := ColdSummary{
		Admin: r.Admin, Bundle: r.Bundle, ElapsedS: math.Round(r.Elapsed.Seconds()*1000) / 1000,
		Asked: r.Asked, Deployed: r.Deployed, DeployMS: latencyMap(r.Deploy),
		Invoked: r.First.Count(), FirstMS: latencyMap(r.First), Warm: r.Warm.Count(),
		Deleted: r.Deleted, Kept: r.Kept, Errors: r.ErrorCount(), ErrorKinds: r.Errors,
		Functions: append([]ColdFunction{}, r.Functions...),
	}
	if r.WarmRun {
		s.WarmMS = latencyMap(r.Warm)
	}
	return s
}

// WriteJSON writes the JSON summary.
func (r *ColdResult) WriteJSON(w io.Writer) error { return writeIndented(w, r.Summary()) }

// WriteHTML writes a self-contained HTML report: the percentile curves of the deploys and the first
// (and warm) invocations.
func (r *ColdResult) WriteHTML(w io.Writer) error {
	var b strings.Builder
	htmlHead(&b, "cold "+r.Admin)
	var text strings.Builder
	_ = r.WriteText(&text)
	htmlPre(&b, text.String())
	percentileChart(&b, "First invocation (cold start) by percentile", "first invocation", r.First)
	if r.WarmRun {
		percentileChart(&b, "Second invocation (warm) by percentile", "warm invocation", r.Warm)
	}
	percentileChart(&b, "Deploy by percentile", "deploy", r.Deploy)
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
