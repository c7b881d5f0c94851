package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// timeFormat is how log lines show times: fixed width, local time.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// printJSON writes an answer as it came, ending in a newline.
func printJSON(w io.Writer, data []byte) error {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		data = append(data[:len(data):len(data)], '\n')
	}
	_, err := w.Write(data)
	return err
}

// printJSONOr returns err, or prints data when err is nil: what a command does with an answer when
// the call failed or --json asks for the answer as it came.
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

// orDash is s, or "-" when empty, so that a table's columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
