package awsapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/adminapi"
	"gatehouse.dev/gatehouse/internal/logstream"
)

// LogSource reads functions' log records (the admin API's source).
type LogSource interface {
	// Recent returns the function's last limit records, oldest first.
	Recent(ctx context.Context, function string, limit int) ([]adminapi.LogRecord, error)
}

// logScan is how many of a function's newest records the Logs operations look through.
const logScan = 10000

// lambdaLogGroup is a function's log group, as Lambda names it.
func lambdaLogGroup(function string) string { return "/aws/lambda/" + function }

// jsonProtocol is the JSON 1.1 protocol (CloudWatch Logs): the code in the body's __type.
type jsonProtocol struct{}

func (jsonProtocol) writeError(w http.ResponseWriter, e *awsError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
}

// logs serves CloudWatch Logs' reading operations over the stack's function logs: a log group per
// function (/aws/lambda/NAME), a log stream per day, version and worker.
func (s *Server) logs(w http.ResponseWriter, req *request) {
	target := req.r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Logs_20140328.")
	var err error
	switch {
	case !ok || req.r.Method != http.MethodPost:
		err = &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: fmt.Sprintf("logs: %q is not an operation this Gatehouse serves", target)}
	case s.cfg.Logs == nil:
		err = &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailableException", Message: "logs are not available on this node"}
	case op == "DescribeLogGroups":
		err = s.describeLogGroups(w, req)
	case op == "CreateLogGroup", op == "DeleteLogGroup", op == "PutRetentionPolicy", op == "DeleteRetentionPolicy":
		err = s.logGroupChange(w, req, op)
	case op == "DescribeLogStreams":
		err = s.describeLogStreams(w, req)
	case op == "GetLogEvents", op == "FilterLogEvents":
		err = s.logEvents(w, req, op == "FilterLogEvents")
	default:
		err = &awsError{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: fmt.Sprintf("logs %s is not an operation this Gatehouse serves; it serves DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents, CreateLogGroup, DeleteLogGroup and Put/DeleteRetentionPolicy", op)}
	}
	if err != nil {
		ae, ok := err.(*awsError)
		if !ok {
			s.log.Error("aws api: logs call failed", "err", err)
			ae = &awsError{Status: http.StatusInternalServerError, Code: "ServiceUnavailableException", Message: err.Error()}
		}
		jsonProtocol{}.writeError(w, ae)
	}
}

func writeJSON11(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	return json.NewEncoder(w).Encode(v)
}

func (s *Server) describeLogGroups(w http.ResponseWriter, req *request) error {
	var in struct {
		LogGroupNamePrefix string `json:"logGroupNamePrefix"`
	}
	if err := json.Unmarshal(req.body, &in); err != nil && len(req.body) > 0 {
		return errBadRequest(err.Error())
	}
	list, err := s.cfg.Registry.List(req.r.Context())
	if err != nil {
		return err
	}
	groups := []map[string]any{}
	for _, f := range list {
		name := lambdaLogGroup(f.Name)
		if !strings.HasPrefix(name, in.LogGroupNamePrefix) {
			continue
		}
		groups = append(groups, map[string]any{
			"logGroupName": name, "creationTime": f.CreatedAt.UnixMilli(), "storedBytes": 0,
			"arn": fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", s.cfg.Region, s.cfg.AccountID, name),
		})
	}
	made, err := s.madeLogGroups(req.r.Context())
	if err != nil {
		return err
	}
	for _, g := range made {
		if !strings.HasPrefix(g.Name, in.LogGroupNamePrefix) {
			continue
		}
		v := map[string]any{"logGroupName": g.Name, "creationTime": g.Created, "storedBytes": 0,
			"arn": fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:*", s.cfg.Region, s.cfg.AccountID, g.Name)}
		if g.RetentionDays > 0 {
			v["retentionInDays"] = g.RetentionDays
		}
		groups = append(groups, v)
	}
	slices.SortFunc(groups, func(a, b map[string]any) int {
		return strings.Compare(a["logGroupName"].(string), b["logGroupName"].(string))
	})
	return writeJSON11(w, map[string]any{"logGroups": groups})
}

// groupFunction is the function of a log group, or ResourceNotFoundException.
func (s *Server) groupFunction(ctx context.Context, group string) (string, error) {
	fn, ok := strings.CutPrefix(group, "/aws/lambda/")
	if ok {
		if _, err := s.cfg.Registry.Get(ctx, fn); err == nil {
			return fn, nil
		}
	}
	return "", &awsError{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "The specified log group does not exist: " + group}
}

// groupRecords is the newest records of a log group's function.
// A log group made with CreateLogGroup holds the access log lines of the stages whose
// AccessLogSettings name it (kept in the stack's log stream as the group's source).
func (s *Server) groupRecords(ctx context.Context, group string) ([]adminapi.LogRecord, error) {
	fn, err := s.groupFunction(ctx, group)
	if err == nil {
		return s.cfg.Logs.Recent(ctx, fn, logScan)
	}
	if s.cfg.APIs != nil {
		if _, gerr := s.cfg.APIs.Resources.Get(ctx, logGroupKey(group)); gerr == nil {
			return s.cfg.Logs.Recent(ctx, logstream.GroupSource(group), logScan)
		}
	}
	return nil, err
}

// streamName is the log stream a record belongs to: its day, version and worker, in Lambda's shape.
func streamName(r adminapi.LogRecord) string {
	if r.Stream == "access" {
		return r.Time.UTC().Format("2006/01/02") + "/access"
	}
	return r.Time.UTC().Format("2006/01/02") + "/[" + versionLabel(r.Version) + "]" + r.Worker
}

func (s *Server) describeLogStreams(w http.ResponseWriter, req *request) error {
	var in struct {
		LogGroupName string `json:"logGroupName"`
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest(err.Error())
	}
	recs, err := s.groupRecords(req.r.Context(), in.LogGroupName)
	if err != nil {
		return err
	}
	type stream struct {
		first, last time.Time
	}
	streams := map[string]*stream{}
	for _, r := range recs {
		name := streamName(r)
		st, ok := streams[name]
		if !ok {
			st = &stream{first: r.Time}
			streams[name] = st
		}
		st.last = r.Time
	}
	out := []map[string]any{}
	for name, st := range streams {
		out = append(out, map[string]any{"logStreamName": name, "creationTime": st.first.UnixMilli(),
			"firstEventTimestamp": st.first.UnixMilli(), "lastEventTimestamp": st.last.UnixMilli(), "lastIngestionTime": st.last.UnixMilli(),
			"arn": fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s", s.cfg.Region, s.cfg.AccountID, in.LogGroupName, name)})
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		return strings.Compare(a["logStreamName"].(string), b["logStreamName"].(string))
	})
	return writeJSON11(w, map[string]any{"logStreams": out})
}

// logEvents answers GetLogEvents (one stream) and FilterLogEvents (any of the group's streams, or
// those with a name prefix, with a filter pattern of terms that must all appear, or a quoted
// phrase). FilterLogEvents pages: its nextToken is the last event's place in the stack's log
// stream, so the next page starts after it however many records arrive meanwhile. That, startTime
// and event ids that are each record's own are what `aws logs tail --follow` polls with.
func (s *Server) logEvents(w http.ResponseWriter, req *request, filter bool) error {
	var in struct {
		LogGroupName   string   `json:"logGroupName"`
		LogStreamName  string   `json:"logStreamName"`
		LogStreamNames []string `json:"logStreamNames"`
		StreamPrefix   string   `json:"logStreamNamePrefix"`
		NextToken      string   `json:"nextToken"`
		FilterPattern  string   `json:"filterPattern"`
		StartTime      int64    `json:"startTime"`
		EndTime        int64    `json:"endTime"`
		Limit          int      `json:"limit"`
		StartFromHead  bool     `json:"startFromHead"`
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest(err.Error())
	}
	recs, err := s.groupRecords(req.r.Context(), in.LogGroupName)
	if err != nil {
		return err
	}
	streams := in.LogStreamNames
	if !filter {
		if in.LogStreamName == "" {
			return errBadRequest("logStreamName is required")
		}
		streams = []string{in.LogStreamName}
	}
	if filter && len(streams) > 0 && in.StreamPrefix != "" {
		return errBadRequest("logStreamNames and logStreamNamePrefix cannot both be given")
	}
	var after uint64
	if filter && in.NextToken != "" {
		n, err := strconv.ParseUint(in.NextToken, 10, 64)
		if err != nil {
			return errBadRequest("nextToken: not a token FilterLogEvents gave")
		}
		after = n
	}
	terms := filterTerms(in.FilterPattern)
	var events []map[string]any
	var seqs []uint64
	for _, r := range recs {
		ms := r.Time.UnixMilli()
		name := streamName(r)
		switch {
		case r.Seq <= after && after > 0:
			continue
		case in.StartTime > 0 && ms < in.StartTime, in.EndTime > 0 && ms >= in.EndTime:
			continue
		case len(streams) > 0 && !slices.Contains(streams, name), !strings.HasPrefix(name, in.StreamPrefix):
			continue
		case !matchesAll(r.Message, terms):
			continue
		}
		ev := map[string]any{"timestamp": ms, "message": r.Message, "ingestionTime": ms}
		if filter {
			ev["logStreamName"] = name
			ev["eventId"] = fmt.Sprintf("%020d", r.Seq)
		}
		events = append(events, ev)
		seqs = append(seqs, r.Seq)
	}
	limit := in.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	next := ""
	if len(events) > limit {
		if filter || in.StartFromHead {
			events = events[:limit]
			next = strconv.FormatUint(seqs[limit-1], 10)
		} else {
			events = events[len(events)-limit:] // GetLogEvents reads from the end unless told otherwise
		}
	}
	if events == nil {
		events = []map[string]any{}
	}
	if filter {
		out := map[string]any{"events": events, "searchedLogStreams": []any{}}
		if next != "" {
			out["nextToken"] = next
		}
		return writeJSON11(w, out)
	}
	// One page holds everything: the tokens say there is nothing further either way.
	token := "f/" + fmt.Sprint(time.Now().UnixNano())
	return writeJSON11(w, map[string]any{"events": events, "nextForwardToken": token, "nextBackwardToken": "b/0"})
}

// filterTerms splits a CloudWatch Logs filter pattern: a quoted phrase is one term, otherwise each
// word is one ("" matches everything). JSON and space-delimited patterns are not served.
func filterTerms(p string) []string {
	p = strings.TrimSpace(p)
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		return []string{p[1 : len(p)-1]}
	}
	return strings.Fields(p)
}

func matchesAll(msg string, terms []string) bool {
	for _, t := range terms {
		if !strings.Contains(msg, t) {
			return false
		}
	}
	return true
}

// tailBytes is how much of an invocation's log Invoke's LogType Tail returns: Lambda's last 4 KB.
const tailBytes = 4096

// logTail is X-Amz-Log-Result: the invocation's log as Lambda's tail reads, START, what the function
// wrote, END and REPORT, its last 4 KB in base64. The records reach the log a moment after the answer:
// it waits for them up to 300 ms, and stops early once they have stopped coming.
// tailQuiet is how long a log tail waits, once the invocation's REPORT is in, for more of its lines.
const tailQuiet = 60 * time.Millisecond

func (s *Server) logTail(ctx context.Context, function, requestID string, version int, took time.Duration) string {
	// The worker writes the invocation's START, output, END and REPORT lines to the log stream just
	// after it answers: wait (a little) for its REPORT, then take the invocation's lines. A process
	// runtime's output is read from its pipes and may come just after the REPORT: wait until no new
	// line has come for tailQuiet (within the same second), and put END and REPORT last.
	var lines, platformEnd []string
	reported := false
	if s.cfg.Logs != nil {
		seen, quietSince := -1, time.Time{}
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			recs, err := s.cfg.Logs.Recent(ctx, function, 1000)
			if err != nil {
				break
			}
			lines, platformEnd = lines[:0], platformEnd[:0]
			for _, r := range recs {
				if r.RequestID != requestID {
					continue
				}
				if r.Stream == "platform" && (strings.HasPrefix(r.Message, "END ") || strings.HasPrefix(r.Message, "REPORT ")) {
					platformEnd = append(platformEnd, r.Message)
					reported = reported || strings.HasPrefix(r.Message, "REPORT ")
					continue
				}
				lines = append(lines, r.Message)
			}
			if n := len(lines) + len(platformEnd); n != seen {
				seen, quietSince = n, time.Now()
			}
			if reported && time.Since(quietSince) >= tailQuiet {
				break
			}
		}
		lines = append(lines, platformEnd...)
	}
	var b strings.Builder
	if !reported {
		// The platform lines did not come in time: make them, around what did.
		fmt.Fprintf(&b, "START RequestId: %s Version: %s\n", requestID, versionLabel(version))
		for _, l := range lines {
			if !strings.HasPrefix(l, "START RequestId: ") && !strings.HasPrefix(l, "END RequestId: ") {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
		ms := float64(took.Microseconds()) / 1000
		fmt.Fprintf(&b, "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\n",
			requestID, requestID, ms, int(ms)+1)
	} else {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	out := b.String()
	if len(out) > tailBytes {
		out = out[len(out)-tailBytes:]
	}
	return base64.StdEncoding.EncodeToString([]byte(out))
}

// A log group made with CreateLogGroup: kept (in the API Gateway resources' bucket, by its name in
// base64) so that scripts that make one for an API's access logs run, and listed; nothing is written
// to it yet (access logs are to come).
type madeLogGroup struct {
	Name          string `json:"name"`
	Created       int64  `json:"created"` // milliseconds
	RetentionDays int    `json:"retentionDays,omitempty"`
}

func logGroupKey(name string) string {
	return "loggroup." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

func (s *Server) madeLogGroups(ctx context.Context) ([]madeLogGroup, error) {
	if s.cfg.APIs == nil {
		return nil, nil
	}
	keys, err := s.cfg.APIs.Resources.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []madeLogGroup
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "loggroup.") {
			continue
		}
		e, err := s.cfg.APIs.Resources.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var g madeLogGroup
		if json.Unmarshal(e.Value(), &g) == nil {
			out = append(out, g)
		}
	}
	return out, nil
}

// validLogGroupName is CloudWatch Logs' rule: 1 to 512 of letters, digits and _-./#.
func validLogGroupName(n string) bool {
	if n == "" || len(n) > 512 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./#", c)) {
			return false
		}
	}
	return true
}

// retentionDays are the retention periods CloudWatch Logs takes.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

func (s *Server) logGroupChange(w http.ResponseWriter, req *request, op string) error {
	if s.cfg.APIs == nil {
		return &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailableException", Message: "log groups are not available on this node"}
	}
	var in struct {
		LogGroupName    string `json:"logGroupName"`
		RetentionInDays int    `json:"retentionInDays"`
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest(err.Error())
	}
	if !validLogGroupName(in.LogGroupName) {
		return &awsError{Status: http.StatusBadRequest, Code: "InvalidParameterException", Message: fmt.Sprintf("logGroupName %q: 1 to 512 letters, digits and _-./#", in.LogGroupName)}
	}
	ctx := req.r.Context()
	if strings.HasPrefix(in.LogGroupName, "/aws/lambda/") {
		// A function's group comes and goes with the function.
		return errBadRequest("the /aws/lambda/ groups are the functions' own: they exist while the function does")
	}
	kv := s.cfg.APIs.Resources
	key := logGroupKey(in.LogGroupName)
	noGroup := &awsError{Status: http.StatusBadRequest, Code: "ResourceNotFoundException", Message: "The specified log group does not exist."}
	switch op {
	case "CreateLogGroup":
		data, _ := json.Marshal(madeLogGroup{Name: in.LogGroupName, Created: time.Now().UnixMilli()})
		_, err := kv.Create(ctx, key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return &awsError{Status: http.StatusBadRequest, Code: "ResourceAlreadyExistsException", Message: "The specified log group already exists"}
		}
		if err != nil {
			return err
		}
	case "DeleteLogGroup":
		if _, err := kv.Get(ctx, key); err != nil {
			return noGroup
		}
		if err := kv.Delete(ctx, key); err != nil {
			return err
		}
	default: // Put/DeleteRetentionPolicy
		e, err := kv.Get(ctx, key)
		if err != nil {
			return noGroup
		}
		var g madeLogGroup
		if err := json.Unmarshal(e.Value(), &g); err != nil {
			return err
		}
		g.RetentionDays = 0
		if op == "PutRetentionPolicy" {
			if !slices.Contains(retentionDays, in.RetentionInDays) {
				return &awsError{Status: http.StatusBadRequest, Code: "InvalidParameterException", Message: fmt.Sprintf("retentionInDays %d is not one CloudWatch Logs takes", in.RetentionInDays)}
			}
			g.RetentionDays = in.RetentionInDays
		}
		data, _ := json.Marshal(g)
		if _, err := kv.Update(ctx, key, data, e.Revision()); err != nil {
			return err
		}
	}
	return writeJSON11(w, map[string]any{})
}
