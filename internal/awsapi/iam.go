package awsapi

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"gatehouse.dev/gatehouse/internal/jsopen"
)

// Role is an IAM role as the IAM calls that tutorials make store it. Gatehouse does not enforce
// roles: they are kept and returned so that scripts that make one before a function work unchanged.
type Role struct {
	Name                     string    `json:"name"`
	ID                       string    `json:"id"`
	Path                     string    `json:"path"`
	Description              string    `json:"description,omitempty"`
	AssumeRolePolicyDocument string    `json:"assumeRolePolicyDocument"`
	AttachedPolicies         []string  `json:"attachedPolicies,omitempty"` // policy ARNs
	Created                  time.Time `json:"created"`
}

// RoleStore keeps a stack's IAM roles in a JetStream Key-Value bucket (gh_<stack>_iam).
type RoleStore struct{ kv jetstream.KeyValue }

// OpenRoleStore opens (creating once) the stack's role bucket.
func OpenRoleStore(ctx context.Context, js jetstream.JetStream, stack string) (*RoleStore, error) {
	kv, err := jsopen.KeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "gh_" + stack + "_iam", History: 1,
		Description: "IAM roles made through the AWS API (stored, not enforced)"})
	if err != nil {
		return nil, err
	}
	return &RoleStore{kv: kv}, nil
}

func roleKey(name string) string { return "role." + name }

var errNoRole = errors.New("no such role")

func (s *RoleStore) get(ctx context.Context, name string) (Role, uint64, error) {
	e, err := s.kv.Get(ctx, roleKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Role{}, 0, errNoRole
	}
	if err != nil {
		return Role{}, 0, err
	}
	var r Role
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Role{}, 0, fmt.Errorf("role %s: %w", name, err)
	}
	return r, e.Revision(), nil
}

func (s *RoleStore) list(ctx context.Context) ([]Role, error) {
	keys, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Role
	for k := range keys.Keys() {
		name, ok := strings.CutPrefix(k, "role.")
		if !ok {
			continue
		}
		r, _, err := s.get(ctx, name)
		if errors.Is(err, errNoRole) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// validRoleName is IAM's rule, 1 to 64 of letters, digits and +=,.@_-, and keeps the role's key in the
// bucket valid.
func validRoleName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+=,.@_-", c)) {
			return false
		}
	}
	// A dot separates the parts of a bucket key: none at either end, none doubled.
	return !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, ".") && !strings.Contains(n, "..")
}

// iam serves the IAM calls tutorials make, on roles: CreateRole, GetRole, ListRoles, DeleteRole,
// AttachRolePolicy, DetachRolePolicy, ListAttachedRolePolicies.
func (s *Server) iam(w http.ResponseWriter, req *request) {
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		queryProtocol{}.writeError(w, errBadRequest("the request body is not a form: "+err.Error()))
		return
	}
	action := form.Get("Action")
	if s.cfg.Roles == nil {
		queryProtocol{}.writeError(w, &awsError{Status: http.StatusServiceUnavailable, Code: "ServiceFailure", Message: "IAM is not available on this node"})
		return
	}
	result, err := s.iamCall(req.r.Context(), action, form)
	if err != nil {
		var ae *awsError
		if !errors.As(err, &ae) {
			s.log.Error("aws api: iam call failed", "action", action, "err", err)
			ae = &awsError{Status: http.StatusInternalServerError, Code: "ServiceFailure", Message: err.Error()}
		}
		queryProtocol{}.writeError(w, ae)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = fmt.Fprintf(w, `<%sResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">`, action)
	if result != nil {
		b, err := xml.Marshal(result)
		if err == nil {
			_, _ = fmt.Fprintf(w, "<%sResult>%s</%sResult>", action, b, action)
		}
	}
	_, _ = fmt.Fprintf(w, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", newRequestID(), action)
}

// roleXML is IAM's Role element.
type roleXML struct {
	XMLName                  xml.Name `xml:"Role"`
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleID                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Description              string   `xml:"Description,omitempty"`
}

func (s *Server) roleXML(r Role) roleXML {
	return roleXML{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: fmt.Sprintf("arn:aws:iam::%s:role%s%s", s.cfg.AccountID, r.Path, r.Name),
		CreateDate: r.Created.UTC().Format(time.RFC3339), AssumeRolePolicyDocument: url.QueryEscape(r.AssumeRolePolicyDocument), Description: r.Description}
}

func noRole(name string) *awsError {
	return &awsError{Status: http.StatusNotFound, Code: "NoSuchEntity", Message: fmt.Sprintf("The role with name %s cannot be found.", name)}
}

func (s *Server) iamCall(ctx context.Context, action string, form url.Values) (any, error) {
	rs := s.cfg.Roles
	name := form.Get("RoleName")
	if action != "ListRoles" && !validRoleName(name) {
		return nil, &awsError{Status: http.StatusBadRequest, Code: "ValidationError", Message: fmt.Sprintf("RoleName %q: want 1 to 64 letters, digits and +=,.@_-", name)}
	}
	switch action {
	case "CreateRole":
		doc := form.Get("AssumeRolePolicyDocument")
		if !json.Valid([]byte(doc)) {
			return nil, &awsError{Status: http.StatusBadRequest, Code: "MalformedPolicyDocument", Message: "AssumeRolePolicyDocument is not JSON"}
		}
		path := form.Get("Path")
		if path == "" {
			path = "/"
		}
		var id [12]byte
		_, _ = rand.Read(id[:])
		r := Role{Name: name, ID: "AROA" + base32.StdEncoding.EncodeToString(id[:])[:17], Path: path, Description: form.Get("Description"),
			AssumeRolePolicyDocument: doc, Created: time.Now().UTC()}
		data, _ := json.Marshal(r)
		if _, err := rs.kv.Create(ctx, roleKey(name), data); errors.Is(err, jetstream.ErrKeyExists) {
			return nil, &awsError{Status: http.StatusConflict, Code: "EntityAlreadyExists", Message: fmt.Sprintf("Role with name %s already exists.", name)}
		} else if err != nil {
			return nil, err
		}
		return s.roleXML(r), nil
	case "GetRole":
		r, _, err := rs.get(ctx, name)
		if errors.Is(err, errNoRole) {
			return nil, noRole(name)
		}
		if err != nil {
			return nil, err
		}
		return s.roleXML(r), nil
	case "ListRoles":
		roles, err := rs.list(ctx)
		if err != nil {
			return nil, err
		}
		out := struct {
			XMLName     xml.Name  `xml:"Roles"`
			Members     []roleXML `xml:"member"`
			IsTruncated bool      `xml:"-"`
		}{}
		for _, r := range roles {
			x := s.roleXML(r)
			x.XMLName = xml.Name{Local: "member"}
			out.Members = append(out.Members, x)
		}
		return out, nil
	case "DeleteRole":
		r, rev, err := rs.get(ctx, name)
		if errors.Is(err, errNoRole) {
			return nil, noRole(name)
		}
		if err != nil {
			return nil, err
		}
		if len(r.AttachedPolicies) > 0 {
			return nil, &awsError{Status: http.StatusConflict, Code: "DeleteConflict", Message: "Cannot delete entity, must detach all policies first."}
		}
		return nil, rs.kv.Delete(ctx, roleKey(name), jetstream.LastRevision(rev))
	case "AttachRolePolicy", "DetachRolePolicy":
		arn := form.Get("PolicyArn")
		if !strings.HasPrefix(arn, "arn:") {
			return nil, &awsError{Status: http.StatusBadRequest, Code: "InvalidInput", Message: fmt.Sprintf("PolicyArn %q is not an ARN", arn)}
		}
		r, rev, err := rs.get(ctx, name)
		if errors.Is(err, errNoRole) {
			return nil, noRole(name)
		}
		if err != nil {
			return nil, err
		}
		i := slices.Index(r.AttachedPolicies, arn)
		switch {
		case action == "AttachRolePolicy" && i < 0:
			r.AttachedPolicies = append(r.AttachedPolicies, arn)
		case action == "DetachRolePolicy" && i < 0:
			return nil, &awsError{Status: http.StatusNotFound, Code: "NoSuchEntity", Message: fmt.Sprintf("Policy %s was not found.", arn)}
		case action == "DetachRolePolicy":
			r.AttachedPolicies = slices.Delete(r.AttachedPolicies, i, i+1)
		}
		data, _ := json.Marshal(r)
		if _, err := rs.kv.Update(ctx, roleKey(name), data, rev); err != nil {
			return nil, &awsError{Status: http.StatusConflict, Code: "ConcurrentModification", Message: "the role changed meanwhile: try again"}
		}
		return nil, nil
	case "ListAttachedRolePolicies":
		r, _, err := rs.get(ctx, name)
		if errors.Is(err, errNoRole) {
			return nil, noRole(name)
		}
		if err != nil {
			return nil, err
		}
		type policy struct {
			PolicyName string `xml:"PolicyName"`
			PolicyArn  string `xml:"PolicyArn"`
		}
		out := struct {
			XMLName xml.Name `xml:"AttachedPolicies"`
			Members []policy `xml:"member"`
		}{}
		for _, arn := range r.AttachedPolicies {
			out.Members = append(out.Members, policy{PolicyName: arn[strings.LastIndexByte(arn, '/')+1:], PolicyArn: arn})
		}
		return out, nil
	}
	return nil, &awsError{Status: http.StatusBadRequest, Code: "InvalidAction",
		Message: fmt.Sprintf("iam %s is not served by this Gatehouse; it serves CreateRole, GetRole, ListRoles, DeleteRole, AttachRolePolicy, DetachRolePolicy and ListAttachedRolePolicies", action)}
}
