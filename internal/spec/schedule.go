package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/yamlnode"
)

// Schedule runs a function on a schedule (an entry of a function's `schedules:`), as an
// EventBridge rule with a schedule expression does: each firing is an asynchronous invocation,
// once per stack however many nodes serve it.
type Schedule struct {
	// Expression is the schedule (`expression:`, or the entry itself when it is a string), in
	// EventBridge's syntax: "rate(5 minutes)" or "cron(0 12 * * ? *)" (minutes, hours, day of
	// month, month, day of week 1–7 = SUN–SAT or names, year: always *).
	Expression string `json:"expression"`
	// Input, when set, is the JSON event each firing passes (`input:`), instead of EventBridge's
	// Scheduled Event.
	Input json.RawMessage `json:"input,omitempty"`
	// TimeZone is the IANA time zone of a cron expression (`timezone:`, such as "Europe/Paris");
	// "" for UTC.
	TimeZone string `json:"timezone,omitempty"`
	// Missed is what happens to firings missed while the stack was down (`missed:`): MissedOnce
	// ("", the default) fires once when it is back, however many were missed; MissedSkip drops
	// them and waits for the next firing.
	Missed string `json:"missed,omitempty"`
}

// What a schedule does with the firings it missed.
const (
	MissedOnce = "once"
	MissedSkip = "skip"
)

// MaxSchedules bounds a function's `schedules:`.
const MaxSchedules = 10

// ScheduleExpression is a parsed schedule expression: Rate for rate(), else Cron.
type ScheduleExpression struct {
	Rate time.Duration
	// Cron holds the five fields of cron() before the year: minutes, hours, day of month, month,
	// day of week (EventBridge's numbering, 1 = Sunday).
	Cron []string
}

// ParseScheduleExpression parses an EventBridge schedule expression.
func ParseScheduleExpression(expr string) (ScheduleExpression, error) {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		f := strings.Fields(expr[len("rate(") : len(expr)-1])
		if len(f) != 2 {
			return ScheduleExpression{}, fmt.Errorf("%s: want rate(VALUE UNIT), such as rate(5 minutes)", yamlnode.QuoteShort(expr))
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 1 || f[0][0] == '0' {
			return ScheduleExpression{}, fmt.Errorf("%s: the value must be a whole number of 1 or more", yamlnode.QuoteShort(expr))
		}
		unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[f[1]]
		if unit == 0 {
			return ScheduleExpression{}, fmt.Errorf("%s: the unit must be minute(s), hour(s) or day(s)", yamlnode.QuoteShort(expr))
		}
		return ScheduleExpression{Rate: time.Duration(n) * unit}, nil
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		f := strings.Fields(expr[len("cron(") : len(expr)-1])
		if len(f) != 6 {
			return ScheduleExpression{}, fmt.Errorf("%s: want six fields, cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR), such as cron(0 12 * * ? *)", yamlnode.QuoteShort(expr))
		}
		if f[5] != "*" {
			return ScheduleExpression{}, fmt.Errorf("%s: the year must be *: schedules limited to some years are not supported", yamlnode.QuoteShort(expr))
		}
		names := []string{"minutes", "hours", "day of month", "month", "day of week"}
		for i, v := range f[:5] {
			if strings.ContainsAny(v, "LW#") && !(i >= 3 && onlyNames(v)) {
				return ScheduleExpression{}, fmt.Errorf("%s: the %s field %q uses L, W or #, which are not supported", yamlnode.QuoteShort(expr), names[i], v)
			}
			if strings.Trim(v, "0123456789*?,-/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
				return ScheduleExpression{}, fmt.Errorf("%s: the %s field %q is not a cron field", yamlnode.QuoteShort(expr), names[i], v)
			}
		}
		return ScheduleExpression{Cron: f[:5]}, nil
	}
	return ScheduleExpression{}, fmt.Errorf("%s is not a schedule expression: want rate(5 minutes) or cron(0 12 * * ? *)", yamlnode.QuoteShort(expr))
}

// onlyNames reports a month or day-of-week field made of names (JUL, WED, …), whose letters may
// include L or W.
func onlyNames(v string) bool {
	for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '-' }) {
		if len(part) != 3 || strings.ContainsAny(part, "0123456789#") {
			return false
		}
	}
	return true
}

// checkSchedules checks a function's schedules at path.
func (c *checker) checkSchedules(path []string, ss []Schedule) {
	if len(ss) > MaxSchedules {
		c.add(errf(path, true, "%d schedules; at most %d", len(ss), MaxSchedules))
	}
	for i, s := range ss {
		p := sub(path, Index(i))
		e, err := ParseScheduleExpression(s.Expression)
		if err != nil {
			c.add(errf(sub(p, "expression"), false, "%v", err))
			continue
		}
		if s.TimeZone != "" {
			if e.Rate != 0 {
				c.add(errf(sub(p, "timezone"), true, "only for cron expressions: a rate has no time of day"))
			} else if _, err := time.LoadLocation(s.TimeZone); err != nil || s.TimeZone == "Local" {
				c.add(errf(sub(p, "timezone"), false, "%s is not a time zone: want an IANA name such as Europe/Paris", yamlnode.QuoteShort(s.TimeZone)))
			}
		}
		if s.Missed != "" && s.Missed != MissedOnce && s.Missed != MissedSkip {
			c.add(errf(sub(p, "missed"), false, "%s: want %s (the default: fire once for the firings missed while the stack was down) or %s", yamlnode.QuoteShort(s.Missed), MissedOnce, MissedSkip))
		}
		if s.Input != nil && !json.Valid(s.Input) {
			c.add(errf(sub(p, "input"), false, "not JSON"))
		}
	}
}
