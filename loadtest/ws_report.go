package loadtest

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteText writes a human-readable summary.
func (r *WSResult) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "target     %s\n", r.Target)
	fmt.Fprintf(&b, "elapsed    %s\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "connect    %d of %d connected in %s (%.1f/s) from %d source address(es)\n",
		r.Connected, r.Connections, r.ConnectElapsed.Round(time.Millisecond), r.ConnectRate(), r.Sources)
	if r.Connect.Count() > 0 {
		fmt.Fprintf(&b, "handshake  %s\n", quantileLine(r.Connect))
	}
	if r.MessageRate > 0 {
		fmt.Fprintf(&b, "messages   %d sent, %d received, %d lost in %s (%.1f/s)\n", r.Sent, r.Received, r.Lost,
			r.MessageElapsed.Round(time.Millisecond), rate(r.Sent, r.MessageElapsed))
		if r.RTT.Count() > 0 {
			fmt.Fprintf(&b, "round trip %s\n", quantileLine(r.RTT))
		}
		if r.Late > 0 {
			fmt.Fprintf(&b, "late       %d messages could not be sent on time\n", r.Late)
		}
	}
	if r.FanoutRounds > 0 || r.IDs > 0 {
		fmt.Fprintf(&b, "fan-out    %d rounds to %d connections: %d of %d posted deliveries received; posts",
			r.FanoutRounds, r.IDs, r.FanoutDelivered, r.FanoutExpected)
		for _, s := range sortedKeys(r.FanoutPosts) {
			fmt.Fprintf(&b, " %d×%d", s, r.FanoutPosts[s])
		}
		b.WriteString("\n")
		if r.FanoutDelivery.Count() > 0 {
			fmt.Fprintf(&b, "delivery   %s\n", quantileLine(r.FanoutDelivery))
		}
		if r.FanoutComplete.Count() > 0 {
			fmt.Fprintf(&b, "all got it p50 %s  max %s (round start until the last connection received it)\n",
				FormatDuration(r.FanoutComplete.Quantile(0.5)), FormatDuration(r.FanoutComplete.Max()))
		}
	}
	if r.OtherFrames > 0 {
		fmt.Fprintf(&b, "frames     %d other frames (no marker of this run)\n", r.OtherFrames)
	}
	fmt.Fprintf(&b, "closed     %d of %d with a close handshake (1000)\n", r.ClosedCleanly, r.Connected)
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "error      %s: %d\n", k, r.Errors[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func quantileLine(h *Hist) string {
	var b strings.Builder
	for _, q := range summaryQuantiles {
		fmt.Fprintf(&b, "%s %s  ", q.Name, FormatDuration(h.Quantile(q.Q)))
	}
	fmt.Fprintf(&b, "max %s  mean %s", FormatDuration(h.Max()), FormatDuration(h.Mean()))
	return b.String()
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// WSSummary is the --json output of `loadtest ws`.
type WSSummary struct {
	Target           string             `json:"target"`
	ElapsedS         float64            `json:"elapsed_s"`
	Connections      int                `json:"connections"`
	Sources          int                `json:"sources"`
	Connected        int64              `json:"connected"`
	ConnectRate      float64            `json:"connect_rate"`
	ConnectMS        map[string]float64 `json:"connect_ms"`
	Sent             int64              `json:"sent"`
	Received         int64              `json:"received"`
	Lost             int64              `json:"lost"`
	Late             int64              `json:"late"`
	MessageRate      float64            `json:"message_rate"`
	RoundTripMS      map[string]float64 `json:"round_trip_ms"`
	OtherFrames      int64              `json:"other_frames"`
	IDs              int64              `json:"ids"`
	FanoutRounds     int                `json:"fanout_rounds"`
	FanoutPosts      map[string]int64   `json:"fanout_posts"`
	FanoutExpected   int64              `json:"fanout_expected"`
	FanoutDelivered  int64              `json:"fanout_delivered"`
	FanoutDeliveryMS map[string]float64 `json:"fanout_delivery_ms"`
	FanoutCompleteMS map[string]float64 `json:"fanout_complete_ms"`
	ClosedCleanly    int64              `json:"closed_cleanly"`
	Errors           int64              `json:"errors"`
	ErrorKinds       map[string]int64   `json:"error_kinds"`
	ConnectPerSecond []SecondSummary    `json:"connect_per_second"`
	RTTPerSecond     []SecondSummary    `json:"round_trip_per_second"`
}

func perSecond(hs []*Hist) []SecondSummary {
	out := []SecondSummary{}
	for i, h := range hs {
		out = append(out, SecondSummary{i, h.Count(), ms(h.Quantile(0.5)), ms(h.Quantile(0.99))})
	}
	return out
}

// Summary returns the JSON form of the result.
func (r *WSResult) Summary() WSSummary {
	s := WSSummary{
		Target: r.Target, ElapsedS: math.Round(r.Elapsed.Seconds()*1000) / 1000,
		Connections: r.Connections, Sources: r.Sources, Connected: r.Connected,
		ConnectRate: math.Round(r.ConnectRate()*10) / 10, ConnectMS: latencyMap(r.Connect),
		Sent: r.Sent, Received: r.Received, Lost: r.Lost, Late: r.Late, MessageRate: r.MessageRate,
		RoundTripMS: latencyMap(r.RTT), OtherFrames: r.OtherFrames,
		IDs: r.IDs, FanoutRounds: r.FanoutRounds, FanoutPosts: map[string]int64{},
		FanoutExpected: r.FanoutExpected, FanoutDelivered: r.FanoutDelivered,
		FanoutDeliveryMS: latencyMap(r.FanoutDelivery), FanoutCompleteMS: latencyMap(r.FanoutComplete),
		ClosedCleanly: r.ClosedCleanly, Errors: r.ErrorCount(), ErrorKinds: r.Errors,
		ConnectPerSecond: perSecond(r.ConnectPerSecond), RTTPerSecond: perSecond(r.RTTPerSecond),
	}
	for code, n := range r.FanoutPosts {
		s.FanoutPosts[strconv.Itoa(code)] = n
	}
	return s
}

// WriteJSON writes the JSON summary.
func (r *WSResult) WriteJSON(w io.Writer) error { return writeIndented(w, r.Summary()) }

// WriteHTML writes a self-contained HTML report: percentile curves and per-second p50/p99 of the
// handshakes and the round trips, and the fan-out delivery curve when there was one.
func (r *WSResult) WriteHTML(w io.Writer) error {
	var b strings.Builder
	htmlHead(&b, r.Target)
	var text strings.Builder
	_ = r.WriteText(&text)
	htmlPre(&b, text.String())
	percentileChart(&b, "Connect (handshake) latency by percentile", "handshake", r.Connect)
	overTimeChart(&b, "Connect latency over time (per second of the run)", r.ConnectPerSecond)
	if r.MessageRate > 0 {
		percentileChart(&b, "Round trip by percentile", "round trip", r.RTT)
		overTimeChart(&b, "Round trip over time (per second of the message phase)", r.RTTPerSecond)
	}
	if r.FanoutDelivery.Count() > 0 {
		percentileChart(&b, "Fan-out delivery by percentile", "delivery", r.FanoutDelivery)
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
