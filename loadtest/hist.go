package loadtest

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// maxTrackable is the longest latency a histogram records; longer ones are clamped to it.
const maxTrackable = time.Hour

// Hist is a latency histogram with microsecond resolution (an HDR histogram: the relative error of
// every percentile is below 10^-sigfigs).
type Hist struct {
	h *hdr.Histogram
}

// NewHist returns an empty histogram keeping sigfigs significant digits (1 to 5).
func NewHist(sigfigs int) *Hist {
	return &Hist{h: hdr.New(1, int64(maxTrackable/time.Microsecond), sigfigs)}
}

// Record adds one latency.
func (h *Hist) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	if us < 1 {
		us = 1
	}
	if d > maxTrackable {
		us = int64(maxTrackable / time.Microsecond)
	}
	_ = h.h.RecordValue(us) // cannot fail: us is within the trackable range
}

// Count is the number of recorded latencies.
func (h *Hist) Count() int64 { return h.h.TotalCount() }

// Quantile returns the latency at quantile q in [0, 1] (0.99 is the 99th percentile).
func (h *Hist) Quantile(q float64) time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max returns the largest recorded latency.
func (h *Hist) Max() time.Duration { return time.Duration(h.h.Max()) * time.Microsecond }

// Min returns the smallest recorded latency.
func (h *Hist) Min() time.Duration { return time.Duration(h.h.Min()) * time.Microsecond }

// Mean returns the mean latency.
func (h *Hist) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}
