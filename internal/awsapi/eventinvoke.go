package awsapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

func notFoundMessage(msg string) *awsError {
	return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: msg}
}

// eventInvokeConfigOut is Lambda's FunctionEventInvokeConfig.
type eventInvokeConfigOut struct {
	LastModified             float64
	FunctionArn              string
	MaximumRetryAttempts     int
	MaximumEventAgeInSeconds int
	DestinationConfig        destinationConfig
}

type destinationConfig struct {
	OnSuccess *destination `json:",omitempty"`
	OnFailure *destination `json:",omitempty"`
}

type destination struct{ Destination string }

// eventInvokeConfig serves Put/Update/Get/DeleteFunctionEventInvokeConfig: the function's async
// settings, changed as a configuration change is (a new version, as UpdateFunctionConfiguration
// makes). Settings Lambda has no field for (retryDelay) keep their values.
func (s *Server) eventInvokeConfig(w http.ResponseWriter, req *request, escaped string) error {
	name, qualifier, err := requestFunction(req, escaped)
	if err != nil {
		return err
	}
	if qualifier != "" && qualifier != "$LATEST" {
		return errBadRequest("event invoke configurations here are the function's: leave out the qualifier, or give $LATEST")
	}
	ctx := req.r.Context()
	cur, m, err := s.latestManifest(ctx, name)
	if err != nil {
		return err
	}
	switch req.r.Method {
	case http.MethodGet:
		if m.Async == nil {
			return notFoundMessage("The function " + s.functionARN(name) + " doesn't have an EventInvokeConfig")
		}
		return writeJSON(w, http.StatusOK, s.eventInvokeOut(name, *m.Async, cur.CreatedAt))
	case http.MethodDelete:
		if m.Async == nil {
			return notFoundMessage("The function " + s.functionARN(name) + " doesn't have an EventInvokeConfig")
		}
		m.Async = nil
		if _, err := s.republish(ctx, req, cur, m, cur.Description); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPut, http.MethodPost:
	default:
		return unknownOperation("lambda", req.r)
	}
	var in struct {
		MaximumRetryAttempts     *int
		MaximumEventAgeInSeconds *int
		DestinationConfig        *struct{ OnSuccess, OnFailure *destination }
	}
	if err := json.Unmarshal(req.body, &in); err != nil {
		return errBadRequest("the request body is not JSON: " + err.Error())
	}
	a := spec.DefaultAsyncSettings()
	if req.r.Method == http.MethodPost && m.Async != nil {
		a = *m.Async // Update: what the request leaves out stays
	} else if m.Async != nil {
		a.RetryDelay = m.Async.RetryDelay
	}
	if in.MaximumRetryAttempts != nil {
		a.MaximumRetryAttempts = *in.MaximumRetryAttempts
	}
	if in.MaximumEventAgeInSeconds != nil {
		a.MaximumEventAge = spec.Duration(time.Duration(*in.MaximumEventAgeInSeconds) * time.Second)
	}
	if d := in.DestinationConfig; d != nil || req.r.Method == http.MethodPut {
		var success, failure *destination
		if d != nil {
			success, failure = d.OnSuccess, d.OnFailure
		}
		if a.OnSuccess, err = destinationIn(success); err != nil {
			return err
		}
		if a.OnFailure, err = destinationIn(failure); err != nil {
			return err
		}
	}
	m.Async = &a
	if errs := m.FunctionSettings.Validate(); errs != nil {
		return errBadRequest(strings.TrimPrefix(errs.Error(), "async."))
	}
	v, err := s.republish(ctx, req, cur, m, cur.Description)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.eventInvokeOut(name, a, v.CreatedAt))
}

// destinationIn turns a Lambda destination into Gatehouse's: a Lambda function's ARN into
// function:NAME; other services' are refused.
func destinationIn(d *destination) (string, error) {
	if d == nil || d.Destination == "" {
		return "", nil
	}
	if strings.HasPrefix(d.Destination, "subject:") || strings.HasPrefix(d.Destination, "function:") {
		return d.Destination, nil
	}
	fn, err := spec.DestinationFunction(d.Destination)
	if err != nil {
		return "", &awsError{Status: http.StatusBadRequest, Code: "InvalidParameterValueException",
			Message: fmt.Sprintf("destination %s: Gatehouse sends invocation records to Lambda functions (or subject:SUBJECT of the stack's event bus), not to queues, topics or event buses", d.Destination)}
	}
	return "function:" + fn, nil
}

func (s *Server) eventInvokeOut(name string, a spec.AsyncSettings, at time.Time) eventInvokeConfigOut {
	out := eventInvokeConfigOut{LastModified: float64(at.UnixMilli()) / 1000, FunctionArn: s.functionARN(name) + ":$LATEST",
		MaximumRetryAttempts: a.MaximumRetryAttempts, MaximumEventAgeInSeconds: int(a.MaximumEventAge.D() / time.Second)}
	for _, d := range []struct {
		dest string
		to   **destination
	}{{a.OnSuccess, &out.DestinationConfig.OnSuccess}, {a.OnFailure, &out.DestinationConfig.OnFailure}} {
		if d.dest == "" {
			continue
		}
		arn := d.dest
		if fn, err := spec.DestinationFunction(d.dest); err == nil {
			arn = s.functionARN(fn)
		}
		*d.to = &destination{Destination: arn}
	}
	return out
}
