package adminapi

import "time"

// TokenView describes an admin token without its secret.
type TokenView struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// TokenList answers GET /admin/v1/tokens, sorted by name.
type TokenList struct {
	Tokens []TokenView `json:"tokens"`
}

// TokenRequest is the body of POST /admin/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
}

// TokenCreated answers POST /admin/v1/tokens: the token, shown this once.
type TokenCreated struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// KeyView is an API key as the admin API shows it: never the key itself.
type KeyView struct {
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"createdAt"`
}

// KeyList answers GET /admin/v1/keys.
type KeyList struct {
	Keys []KeyView `json:"keys"`
}

// KeyRequest is the body of POST /admin/v1/keys.
type KeyRequest struct {
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// KeyCreated answers POST /admin/v1/keys: the key, shown this once.
type KeyCreated struct {
	Name      string    `json:"name"`
	Plan      string    `json:"plan"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"createdAt"`
}

// MaxConnectionMessage bounds the body of a post to a connection (128 KiB, API Gateway's message
// limit); the connection's API may set a lower limit.
const MaxConnectionMessage = 128 << 10

// ConnectionView is a WebSocket connection, as the admin API shows it.
type ConnectionView struct {
	ID           string    `json:"id"`
	API          string    `json:"api"`
	Stage        string    `json:"stage"`
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	SourceIP     string    `json:"sourceIp"`
	UserAgent    string    `json:"userAgent"`
}

// ConnectionList answers GET /admin/v1/connections: the node's connections, oldest first.
type ConnectionList struct {
	Connections []ConnectionView `json:"connections"`
}

// The audit actions of function changes, whichever API made them.
const (
	ActionFunctionDeploy = "function.deploy"
	ActionFunctionDelete = "function.delete"
	ActionAliasSet       = "alias.set"
	ActionAliasDelete    = "alias.delete"
	ActionAPIApply       = "api.apply"
	ActionAPIDelete      = "api.delete"
)

// AuditEntry is one change made through the control plane: who (the token's name), when, from which
// address, what.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Token is the name of the token the change was made with.
	Token string `json:"token"`
	// Address is the client's IP address.
	Address string `json:"address"`
	// Action is what was done, such as "function.deploy" (the admin server's Action constants).
	Action string `json:"action"`
	// Target is what changed: a token's name, "function:version" for a deploy, a function's name,
	// "function:alias" for an alias.
	Target string `json:"target"`
	// Detail says more, in a few words ("sha256 455e…, created").
	Detail string `json:"detail"`
}

// AuditList answers GET /admin/v1/audit, oldest first.
type AuditList struct {
	Entries []AuditEntry `json:"entries"`
}

// ErrorBody is the body of every answer that is not a 2xx.
type ErrorBody struct {
	Message string `json:"message"`
}
