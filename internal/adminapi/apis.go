package adminapi

import (
	"time"

	"gatehouse.dev/gatehouse/internal/spec"
)

// APIView is an API definition as the admin API shows it: GET /admin/v1/apis/{name}, and the answer
// to PUT.
type APIView struct {
	// Name is the API's name, unique in the stack.
	Name string `json:"name"`
	// ID is the API's immutable id: 10 lower-case letters and digits.
	ID string `json:"id"`
	// ManagedBy says what wrote the definition last: "stack-file" or "admin-api".
	ManagedBy string `json:"managedBy"`
	// Source says more: the stack file's name, or the name of the admin token.
	Source string `json:"source,omitempty"`
	// Revision is the definition's revision; PUT and DELETE take it in If-Match to change only
	// that revision.
	Revision  uint64    `json:"revision"`
	Hash      string    `json:"hash"`
	UpdatedAt time.Time `json:"updatedAt"`
	// API is the definition, with the stack file's keys: PUT accepts it back as it is.
	API spec.API `json:"api"`
}

// APIList answers GET /admin/v1/apis.
type APIList struct {
	APIs []APIView `json:"apis"`
}

// Problem is one problem with a definition sent to the admin API.
type Problem struct {
	// Path is the key path of the value, such as `routes["GET /x"].integration.target`.
	Path string `json:"path,omitempty"`
	// Line and Column place it in the body as sent (1-based; 0 when unknown).
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// ProblemsView answers a definition refused with 400: every problem at once.
type ProblemsView struct {
	Message  string    `json:"message"`
	Problems []Problem `json:"problems"`
}
