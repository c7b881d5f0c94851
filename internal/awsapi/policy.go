package awsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// A function's resource-based policy (AddPermission, RemovePermission, GetPolicy): kept beside the
// roles and, like them, not enforced — scripts that grant API Gateway or another service the right
// to invoke a function run unchanged, and the grant is shown, but every caller that reaches the
// function may invoke it.

func policyKey(function string) string { return "policy." + function }

type policyDoc struct {
	Version   string            `json:"Version"`
	ID        string            `json:"Id"`
	Statement []json.RawMessage `json:"Statement"`
}

func (s *Server) loadPolicy(ctx context.Context, function string) (policyDoc, uint64, error) {
	doc := policyDoc{Version: "2012-10-17", ID: "default"}
	e, err := s.cfg.Roles.kv.Get(ctx, policyKey(function))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return doc, 0, nil
	}
	if err != nil {
		return doc, 0, err
	}
	if err := json.Unmarshal(e.Value(), &doc); err != nil {
		return doc, 0, err
	}
	return doc, e.Revision(), nil
}

func statementID(raw json.RawMessage) string {
	var st struct{ Sid string }
	_ = json.Unmarshal(raw, &st)
	return st.Sid
}

// policy serves POST functions/NAME/policy, GET functions/NAME/policy and
// DELETE functions/NAME/policy/SID.
func (s *Server) policy(w http.ResponseWriter, req *request, escaped, sid string) error {
	if s.cfg.Roles == nil {
		return &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceException", Message: "policies are not available on this node"}
	}
	name, _, err := functionName(escaped)
	if err != nil {
		return err
	}
	ctx := req.r.Context()
	if _, err := s.latest(ctx, name); err != nil {
		return err
	}
	doc, rev, err := s.loadPolicy(ctx, name)
	if err != nil {
		return err
	}
	store := func() error {
		data, _ := json.Marshal(doc)
		var err error
		if rev == 0 {
			_, err = s.cfg.Roles.kv.Create(ctx, policyKey(name), data)
		} else {
			_, err = s.cfg.Roles.kv.Update(ctx, policyKey(name), data, rev)
		}
		if err != nil {
			return &awsError{Status: http.StatusPreconditionFailed, Code: "PreconditionFailedException", Message: "the policy changed meanwhile: try again"}
		}
		return nil
	}
	switch {
	case req.r.Method == http.MethodGet && sid == "":
		if len(doc.Statement) == 0 {
			return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: "The resource you requested does not exist."}
		}
		b, _ := json.Marshal(doc)
		return writeJSON(w, http.StatusOK, map[string]string{"Policy": string(b), "RevisionId": strconv.FormatUint(rev, 10)})
	case req.r.Method == http.MethodPost && sid == "":
		var in struct {
			StatementId, Action, Principal, SourceArn, SourceAccount string
		}
		if err := json.Unmarshal(req.body, &in); err != nil {
			return errBadRequest("the request is not AddPermission's JSON: " + err.Error())
		}
		if in.StatementId == "" || in.Action == "" || in.Principal == "" {
			return errBadRequest("StatementId, Action and Principal are required")
		}
		if slices.ContainsFunc(doc.Statement, func(raw json.RawMessage) bool { return statementID(raw) == in.StatementId }) {
			return &awsError{Status: http.StatusConflict, Code: "ResourceConflictException",
				Message: fmt.Sprintf("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", in.StatementId)}
		}
		principal := map[string]string{"AWS": in.Principal}
		if strings.HasSuffix(in.Principal, ".amazonaws.com") {
			principal = map[string]string{"Service": in.Principal}
		}
		st := map[string]any{"Sid": in.StatementId, "Effect": "Allow", "Principal": principal, "Action": in.Action, "Resource": s.functionARN(name)}
		cond := map[string]any{}
		if in.SourceArn != "" {
			cond["ArnLike"] = map[string]string{"AWS:SourceArn": in.SourceArn}
		}
		if in.SourceAccount != "" {
			cond["StringEquals"] = map[string]string{"AWS:SourceAccount": in.SourceAccount}
		}
		if len(cond) > 0 {
			st["Condition"] = cond
		}
		raw, _ := json.Marshal(st)
		doc.Statement = append(doc.Statement, raw)
		if err := store(); err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, map[string]string{"Statement": string(raw)})
	case req.r.Method == http.MethodDelete && sid != "":
		i := slices.IndexFunc(doc.Statement, func(raw json.RawMessage) bool { return statementID(raw) == sid })
		if i < 0 {
			return &awsError{Status: http.StatusNotFound, Code: "ResourceNotFoundException", Message: "Statement " + sid + " is not found in resource policy."}
		}
		doc.Statement = slices.Delete(doc.Statement, i, i+1)
		if err := store(); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return unknownOperation("lambda", req.r)
}

// dropPolicy removes a deleted function's policy.
func (s *Server) dropPolicy(ctx context.Context, function string) {
	if s.cfg.Roles == nil {
		return
	}
	if err := s.cfg.Roles.kv.Delete(ctx, policyKey(function)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Error("aws api: removing a deleted function's policy", "function", function, "err", err)
	}
}

// splitPolicyPath splits "policy" or "policy/SID".
func splitPolicyPath(sub string) (sid string, ok bool) {
	if sub == "policy" {
		return "", true
	}
	sid, ok = strings.CutPrefix(sub, "policy/")
	if ok {
		sid, _ = url.PathUnescape(sid)
	}
	return sid, ok && sid != "" && !strings.Contains(sid, "/")
}
