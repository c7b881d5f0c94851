package openapi

import (
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
)

// API Gateway's account-wide limits, which stand in for the half of a throttle a definition leaves
// out.
const (
	AccountRate  = "10000"
	AccountBurst = "5000"
)

// Throttle is a stack file's throttle from a rate and a burst limit, as API Gateway definitions
// (SAM's MethodSettings, serverless.yml's usage plans) give them: nil when both are nil. When only
// one is given, API Gateway's account-wide limit stands in for the other, as on AWS, and notes is
// told so.
func Throttle(rate, burst, at *doctree.Node, notes *doctree.Notes) *doctree.Node {
	if rate == nil && burst == nil {
		return nil
	}
	t := doctree.NewMap(at)
	switch {
	case rate == nil:
		notes.Notice(burst, "a burst limit without a rate limit: the rate is API Gateway's account limit, %s requests per second", AccountRate)
		rate = &doctree.Node{Kind: doctree.Number, Text: AccountRate, Line: burst.Line, Column: burst.Column, Path: burst.Path}
	case burst == nil:
		notes.Notice(rate, "a rate limit without a burst limit: the burst is API Gateway's account limit, %s requests", AccountBurst)
		burst = &doctree.Node{Kind: doctree.Number, Text: AccountBurst, Line: rate.Line, Column: rate.Column, Path: rate.Path}
	}
	t.Set("rate", doctree.AsNumber(rate))
	t.Set("burst", doctree.AsNumber(burst))
	return t
}

// Quota is a stack file's usage-plan quota from a definition's limit, period and offset (nil when
// limit and period are both nil); an offset other than 0 is not served, and notes is told so.
func Quota(limit, period, offset, at *doctree.Node, notes *doctree.Notes) *doctree.Node {
	if limit == nil && period == nil {
		return nil
	}
	q := doctree.NewMap(at)
	q.Set("limit", doctree.AsNumber(limit))
	where := period
	if where == nil {
		where = at
	}
	q.Set("period", doctree.Str(strings.ToLower(period.Scalar()), where))
	if offset != nil && offset.Scalar() != "0" {
		notes.Notice(offset, "a quota's offset is not served: periods start at midnight UTC (days), on Mondays (weeks) or on the 1st (months)")
	}
	return q
}
