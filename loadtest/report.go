package loadtest

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Percentiles reported in every summary.
var summaryQuantiles = []struct {
	Name string
	Q    float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}}

// FormatDuration shows a latency the way the reports do: µs, ms with two decimals, or s.
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

// WriteText writes a human-readable summary.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := "closed loop"
	if r.Mode == "open" {
		mode = "open loop (latency from intended send time)"
	}
	fmt.Fprintf(&b, "target     %s\nmode       %s\n", r.Target, mode)
	fmt.Fprintf(&b, "elapsed    %s\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "requests   %d sent, %d answered, %d errors\n", r.Sent, r.Answered, r.ErrorCount())
	fmt.Fprintf(&b, "throughput %.1f req/s\n", r.Throughput())
	if r.Latency.Count() > 0 {
		fmt.Fprintf(&b, "latency    ")
		for _, q := range summaryQuantiles {
			fmt.Fprintf(&b, "%s %s  ", q.Name, FormatDuration(r.Latency.Quantile(q.Q)))
		}
		fmt.Fprintf(&b, "max %s  mean %s\n", FormatDuration(r.Latency.Max()), FormatDuration(r.Latency.Mean()))
		if r.Mode == "open" {
			fmt.Fprintf(&b, "service    p50 %s  p99 %s  max %s (from actual send time)\n",
				FormatDuration(r.Service.Quantile(0.5)), FormatDuration(r.Service.Quantile(0.99)), FormatDuration(r.Service.Max()))
		}
	}
	fmt.Fprintf(&b, "statuses  ")
	for _, s := range sortedKeys(r.Statuses) {
		fmt.Fprintf(&b, " %d×%d", s, r.Statuses[s])
	}
	b.WriteString("\n")
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "error      %s: %d\n", k, r.Errors[k])
	}
	if r.Late > 0 {
		fmt.Fprintf(&b, "late       %d requests could not be sent on time (max in flight reached)\n", r.Late)
	}
	if r.Abandoned > 0 {
		fmt.Fprintf(&b, "abandoned  %d requests still unanswered after the run\n", r.Abandoned)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONSummary is the --json output.
type JSONSummary struct {
	Target        string             `json:"target"`
	Mode          string             `json:"mode"`
	ElapsedS      float64            `json:"elapsed_s"`
	Sent          int64              `json:"sent"`
	Answered      int64              `json:"answered"`
	Errors        int64              `json:"errors"`
	ThroughputRPS float64            `json:"throughput_rps"`
	LatencyMS     map[string]float64 `json:"latency_ms"`
	ServiceMS     map[string]float64 `json:"service_ms,omitempty"`
	Statuses      map[string]int64   `json:"statuses"`
	ErrorKinds    map[string]int64   `json:"error_kinds"`
	Late          int64              `json:"late"`
	Abandoned     int64              `json:"abandoned"`
	PerSecond     []SecondSummary    `json:"per_second"`
}

// SecondSummary is one second of the run.
type SecondSummary struct {
	Second   int     `json:"second"`
	Answered int64   `json:"answered"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
}

func latencyMap(h *Hist) map[string]float64 {
	m := map[string]float64{}
	for _, q := range summaryQuantiles {
		m[q.Name] = ms(h.Quantile(q.Q))
	}
	m["max"] = ms(h.Max())
	m["mean"] = ms(h.Mean())
	return m
}

// Summary returns the JSON form of the result.
func (r *Result) Summary() JSONSummary {
	s := JSONSummary{
		Target: r.Target, Mode: r.Mode, ElapsedS: math.Round(r.Elapsed.Seconds()*1000) / 1000,
		Sent: r.Sent, Answered: r.Answered, Errors: r.ErrorCount(),
		ThroughputRPS: math.Round(r.Throughput()*10) / 10,
		LatencyMS:     latencyMap(r.Latency),
		Statuses:      map[string]int64{}, ErrorKinds: r.Errors,
		Late: r.Late, Abandoned: r.Abandoned, PerSecond: []SecondSummary{},
	}
	if r.Mode == "open" {
		s.ServiceMS = latencyMap(r.Service)
	}
	for code, n := range r.Statuses {
		s.Statuses[strconv.Itoa(code)] = n
	}
	for i, h := range r.PerSecond {
		s.PerSecond = append(s.PerSecond, SecondSummary{i, h.Count(), ms(h.Quantile(0.5)), ms(h.Quantile(0.99))})
	}
	return s
}

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteJSON writes the JSON summary.
func (r *Result) WriteJSON(w io.Writer) error { return writeIndented(w, r.Summary()) }

// Chart geometry of the HTML report.
const (
	chartW, chartH = 720.0, 300.0
	padL, padR     = 70.0, 20.0
	padT, padB     = 20.0, 40.0
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

type series struct {
	name, color string
	pts         [][2]float64 // x, y in data units
}

// svgChart draws line series on linear axes; xTicks maps data x to a label.
func svgChart(b *strings.Builder, title string, xMax, yMax float64, xTicks []float64, xLabel func(float64) string, yUnit string, ss []series) {
	yMax = niceMax(yMax)
	if xMax <= 0 {
		xMax = 1
	}
	px := func(x float64) float64 { return padL + x/xMax*(chartW-padL-padR) }
	py := func(y float64) float64 { return chartH - padB - y/yMax*(chartH-padT-padB) }
	fmt.Fprintf(b, "<h2>%s</h2>\n", html.EscapeString(title))
	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" stroke=\"#999\"/>\n", padL, padT, chartW-padL-padR, chartH-padT-padB)
	for i := 0; i <= 5; i++ {
		y := yMax * float64(i) / 5
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", padL, py(y), chartW-padR, py(y))
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s %s</text>\n", padL-4, py(y)+4, strconv.FormatFloat(y, 'g', 4, 64), yUnit)
	}
	for _, x := range xTicks {
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", px(x), padT, px(x), chartH-padB)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", px(x), chartH-padB+16, html.EscapeString(xLabel(x)))
	}
	for i, s := range ss {
		if len(s.pts) == 0 {
			continue
		}
		var pts strings.Builder
		for _, p := range s.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(p[0]), py(math.Min(p[1], yMax)))
		}
		fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", s.color, strings.TrimSpace(pts.String()))
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"%s\">%s</text>\n", padL+10, padT+16+float64(i)*16, s.color, html.EscapeString(s.name))
	}
	b.WriteString("</svg>\n")
}

// WriteHTML writes a self-contained HTML report (inline SVG, no scripts): the latency percentile curve
// on a log axis of 1−p, and the per-second p50 and p99 over the run.
func (r *Result) WriteHTML(w io.Writer) error {
	var b strings.Builder
	htmlHead(&b, r.Target)
	var text strings.Builder
	_ = r.WriteText(&text)
	htmlPre(&b, text.String())

	percentileChart(&b, "Latency by percentile", "latency", r.Latency)
	overTimeChart(&b, "Latency over time (per second)", r.PerSecond)
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// percentileChart draws h's percentile curve on a log axis of 1−p: x = log10(1/(1-p)), so 90% is at
// 1, 99% at 2, 99.9% at 3.
func percentileChart(b *strings.Builder, title, name string, h *Hist) {
	n := h.Count()
	xMax := 2.0
	if n > 0 {
		xMax = math.Max(2, math.Ceil(math.Log10(float64(n))))
	}
	curve := series{name: name, color: "#1f77b4"}
	yMax := 0.0
	if n > 0 {
		for x := 0.0; x <= xMax+1e-9; x += 0.02 {
			q := 1 - math.Pow(10, -x)
			v := ms(h.Quantile(q))
			curve.pts = append(curve.pts, [2]float64{x, v})
			yMax = math.Max(yMax, v)
		}
	}
	var ticks []float64
	for x := 0.0; x <= xMax; x++ {
		ticks = append(ticks, x)
	}
	pctLabel := func(x float64) string {
		return strconv.FormatFloat(100*(1-math.Pow(10, -x)), 'f', -1, 64) + "%"
	}
	svgChart(b, title, xMax, yMax, ticks, pctLabel, "ms", []series{curve})
}

// overTimeChart draws the p50 and p99 of each second's histogram.
func overTimeChart(b *strings.Builder, title string, perSecond []*Hist) {
	p50 := series{name: "p50", color: "#2ca02c"}
	p99 := series{name: "p99", color: "#d62728"}
	yMax := 0.0
	for i, h := range perSecond {
		if h.Count() == 0 {
			continue
		}
		a, c := ms(h.Quantile(0.5)), ms(h.Quantile(0.99))
		p50.pts = append(p50.pts, [2]float64{float64(i) + 0.5, a})
		p99.pts = append(p99.pts, [2]float64{float64(i) + 0.5, c})
		yMax = math.Max(yMax, c)
	}
	secs := float64(max(1, len(perSecond)))
	step := niceMax(secs / 10)
	var ticks []float64
	for x := 0.0; x <= secs; x += step {
		ticks = append(ticks, x)
	}
	secLabel := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) + "s" }
	svgChart(b, title, secs, yMax, ticks, secLabel, "ms", []series{p50, p99})
}

// htmlHead starts a report page: its title, style and heading.
func htmlHead(b *strings.Builder, title string) {
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(b, "<title>gatehouse loadtest: %s</title>\n", html.EscapeString(title))
	b.WriteString("<style>body{font-family:sans-serif;margin:2em;color:#222}pre{background:#f4f4f4;padding:1em}</style>\n</head>\n<body>\n")
	fmt.Fprintf(b, "<h1>gatehouse loadtest %s</h1>\n", html.EscapeString(title))
}

// htmlPre writes text as a preformatted block.
func htmlPre(b *strings.Builder, text string) {
	b.WriteString("<pre>")
	b.WriteString(html.EscapeString(text))
	b.WriteString("</pre>\n")
}
