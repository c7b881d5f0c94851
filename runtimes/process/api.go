package process

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The Runtime API's paths (version 2018-06-01).
const (
	pathNext      = "/2018-06-01/runtime/invocation/next"
	pathResponse  = "/2018-06-01/runtime/invocation/{id}/response"
	pathError     = "/2018-06-01/runtime/invocation/{id}/error"
	pathInitError = "/2018-06-01/runtime/init/error"
)

func (p *Process) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathNext, p.handleNext)
	mux.HandleFunc("POST "+pathResponse, p.handleResponse)
	mux.HandleFunc("POST "+pathError, p.handleError)
	mux.HandleFunc("POST "+pathInitError, p.handleInitError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "NotFound", "no such Runtime API endpoint: "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hmu.Lock()
		if p.hclosed {
			p.hmu.Unlock()
			apiError(w, http.StatusInternalServerError, "Runtime.Closed", "runtime API closed: exit")
			return
		}
		p.handlers.Add(1)
		p.hmu.Unlock()
		defer p.handlers.Done()
		mux.ServeHTTP(w, r)
	})
}

// apiError writes the Runtime API's error body.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`+"\n")
}

// handleNext ends the init phase (the first time) and blocks until Invoke hands the process an event.
// It is never timed out: the process waits here between invocations.
func (p *Process) handleNext(w http.ResponseWriter, r *http.Request) {
	p.initOnce.Do(func() { close(p.initDone) })
	select {
	case inv := <-p.next:
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", p.arn)
		h.Set("Lambda-Runtime-Trace-Id", inv.trace)
		h.Set("Content-Length", strconv.Itoa(len(inv.payload)))
		p.mu.Lock()
		p.cur = inv
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-p.closing:
		apiError(w, http.StatusInternalServerError, "Runtime.Closed", "runtime API closed: exit")
	case <-r.Context().Done():
	}
}

// current checks that id is the invocation in flight: 400 InvalidRequestID when it is not, 403
// InvalidStateTransition when it has its outcome already. It returns the invocation or nil.
func (p *Process) current(w http.ResponseWriter, id string) *invocation {
	p.mu.Lock()
	inv := p.cur
	answered := inv != nil && inv.answered
	p.mu.Unlock()
	switch {
	case inv == nil || inv.id != id:
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "invalid request id "+strconv.Quote(id))
		return nil
	case answered:
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+strconv.Quote(id)+" already has its outcome")
		return nil
	}
	return inv
}

// finish records the invocation's outcome once: false (and a 403) for a second one.
func (p *Process) finish(w http.ResponseWriter, inv *invocation, r result) bool {
	p.mu.Lock()
	first := !inv.answered
	inv.answered = true
	p.mu.Unlock()
	if !first {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+strconv.Quote(inv.id)+" already has its outcome")
		return false
	}
	inv.done <- r
	return true
}

// readBody reads at most MaxResponseBytes; tooLarge when there is more.
func readBody(r *http.Request) (body []byte, tooLarge bool, err error) {
	if r.ContentLength > MaxResponseBytes {
		return nil, true, nil
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(body) > MaxResponseBytes {
		return nil, true, nil
	}
	return body, false, nil
}

func (p *Process) handleResponse(w http.ResponseWriter, r *http.Request) {
	p.handleOutcome(w, r, "response", func(body []byte) result { return result{body: body} })
}

// handleOutcome reads what the runtime posts for the current invocation (what: "response" or
// "error"), bounded by MaxResponseBytes, and ends the invocation with what outcome makes of it.
func (p *Process) handleOutcome(w http.ResponseWriter, r *http.Request, what string, outcome func(body []byte) result) {
	inv := p.current(w, r.PathValue("id"))
	if inv == nil {
		return
	}
	body, tooLarge, err := readBody(r)
	switch {
	case err != nil:
		apiError(w, http.StatusInternalServerError, "Runtime.Unknown", "reading the "+what+": "+err.Error())
	case tooLarge:
		if p.finish(w, inv, result{err: fmt.Errorf("%w: the %s is over %d bytes", ErrTooLarge, what, MaxResponseBytes)}) {
			apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
				fmt.Sprintf("%s payload over the limit of %d bytes", what, MaxResponseBytes))
		}
	default:
		if p.finish(w, inv, outcome(body)) {
			accepted(w)
		}
	}
}

// lambdaError is the error body a runtime posts: Python and Go use stackTrace, Node.js trace.
type lambdaError struct {
	Message    string   `json:"errorMessage"`
	Type       string   `json:"errorType"`
	StackTrace []string `json:"stackTrace"`
	Trace      []string `json:"trace"`
}

// parseError reads an error body; the Lambda-Runtime-Function-Error-Type header names the error when
// the body does not.
func parseError(r *http.Request, body []byte) lambdaError {
	var le lambdaError
	if err := json.Unmarshal(body, &le); err != nil {
		le = lambdaError{}
		if len(body) > 0 {
			le.Message = string(body)
		}
	}
	if le.StackTrace == nil {
		le.StackTrace = le.Trace
	}
	if le.Type == "" {
		le.Type = r.Header.Get("Lambda-Runtime-Function-Error-Type")
	}
	return le
}

func (p *Process) handleError(w http.ResponseWriter, r *http.Request) {
	p.handleOutcome(w, r, "error", func(body []byte) result {
		le := parseError(r, body)
		return result{err: &FunctionError{Type: le.Type, Message: le.Message, StackTrace: le.StackTrace, Raw: body}}
	})
}

// handleInitError records the init error; the process is expected to exit after it. Once init is over
// (the process asked for an invocation) it is out of sequence: 403.
func (p *Process) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readBody(r)
	if err != nil {
		apiError(w, http.StatusInternalServerError, "Runtime.Unknown", "reading the init error: "+err.Error())
		return
	}
	if tooLarge {
		body = nil
	}
	le := parseError(r, body)
	ie := &InitError{Type: le.Type, Message: le.Message, StackTrace: le.StackTrace, Raw: body}
	ok := false
	p.initOnce.Do(func() {
		p.initErr = ie
		close(p.initFailed)
		ok = true
	})
	if !ok {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "init is over")
		return
	}
	accepted(w)
}

// traceID is an X-Ray trace header for one invocation: Root=1-<epoch seconds>-<96 random bits>.
func traceID(now time.Time) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", now.Unix(), hex.EncodeToString(b[:12]), hex.EncodeToString(b[12:]))
}
