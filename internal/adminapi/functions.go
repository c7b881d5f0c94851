package adminapi

import "time"

// The views of functions, versions and aliases. They are built from the registry's records and leave
// out what the API never shows: sealed secrets, IDs, hashes of manifests.

// Headers of an invocation's answer.
const (
	// HeaderExecutedVersion carries the number of the version that ran.
	HeaderExecutedVersion = "X-Gatehouse-Executed-Version"
	// HeaderFunctionError is set to "Unhandled" when the function failed; the body then describes
	// the error as Lambda does: a [FunctionError].
	HeaderFunctionError = "X-Gatehouse-Function-Error"
)

// LatestQualifier is the version an alias of version 0 points at, as [AliasView.Target] shows it.
const LatestQualifier = "$LATEST"

// FunctionView is a function as the API shows it in lists.
type FunctionView struct {
	Name          string    `json:"name"`
	LatestVersion int       `json:"latestVersion"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// FunctionList answers GET /admin/v1/functions.
type FunctionList struct {
	Functions []FunctionView `json:"functions"`
}

// FunctionDetail is one function as GET /admin/v1/functions/{name} shows it: its FunctionView's
// fields, its newest version and its aliases.
type FunctionDetail struct {
	FunctionView
	Latest  VersionView `json:"latest"`
	Aliases []AliasView `json:"aliases"`
}

// VersionView is a version as the API shows it: the names of its secrets, never their values.
type VersionView struct {
	Function       string            `json:"function"`
	Version        int               `json:"version"`
	ModuleSHA256   string            `json:"moduleSha256"`
	ModuleSize     int64             `json:"moduleSize"`
	ABI            string            `json:"abi"`
	MemoryMB       int               `json:"memory"`
	Timeout        string            `json:"timeout"`
	Environment    map[string]string `json:"environment"`
	Secrets        []string          `json:"secrets"`
	MaxConcurrency int               `json:"maxConcurrency"`
	MinWarm        int               `json:"minWarm"`
	IdleTimeout    string            `json:"idleTimeout"`
	SnapStart      bool              `json:"snapStart"`
	Description    string            `json:"description"`
	CreatedAt      time.Time         `json:"createdAt"`
}

// VersionList answers GET /admin/v1/functions/{name}/versions, oldest first.
type VersionList struct {
	Versions []VersionView `json:"versions"`
}

// AliasView is an alias as the API shows it. Version 0 means $LATEST, and Target is then "$LATEST";
// otherwise Target is the version's number as a string.
type AliasView struct {
	Function          string    `json:"function"`
	Name              string    `json:"name"`
	Version           int       `json:"version"`
	Target            string    `json:"target"`
	AdditionalVersion int       `json:"additionalVersion,omitempty"`
	AdditionalWeight  float64   `json:"additionalWeight,omitempty"`
	Description       string    `json:"description"`
	UpdatedAt         time.Time `json:"updatedAt"`
	Revision          uint64    `json:"revision"`
}

// AliasList answers GET /admin/v1/functions/{name}/aliases.
type AliasList struct {
	Aliases []AliasView `json:"aliases"`
}

// AliasRequest is the body of PUT /admin/v1/functions/{name}/aliases/{alias}. Version 0 is $LATEST;
// AdditionalWeight (0 to 1) of the requests go to AdditionalVersion. A Revision other than 0 changes
// the alias only at that revision.
type AliasRequest struct {
	Version           int     `json:"version"`
	AdditionalVersion int     `json:"additionalVersion"`
	AdditionalWeight  float64 `json:"additionalWeight"`
	Description       string  `json:"description"`
	Revision          uint64  `json:"revision"`
}

// DeployAnswer answers POST /admin/v1/functions (201 when the version was created, 200 when the
// bundle was the newest version's already).
type DeployAnswer struct {
	Function string      `json:"function"`
	Created  bool        `json:"created"`
	Version  VersionView `json:"version"`
	Alias    *AliasView  `json:"alias,omitempty"`
}

// FunctionError is the body of an invocation whose function failed (HeaderFunctionError is set), as
// Lambda writes it.
type FunctionError struct {
	ErrorType    string   `json:"errorType"`
	ErrorMessage string   `json:"errorMessage"`
	StackTrace   []string `json:"stackTrace,omitempty"`
}

// LogRecord is one line a function wrote, as GET /admin/v1/functions/{name}/logs streams it (one
// JSON object a line).
type LogRecord struct {
	Time      time.Time `json:"time"`
	Function  string    `json:"function"`
	Version   int       `json:"version"`
	RequestID string    `json:"requestId,omitempty"`
	TraceID   string    `json:"traceId,omitempty"`
	Stream    string    `json:"stream"`
	Worker    string    `json:"worker,omitempty"`
	Message   string    `json:"message"`
	// Seq orders and identifies the records of a stack (logstream.Record's Seq); not sent.
	Seq uint64 `json:"-"`
}
