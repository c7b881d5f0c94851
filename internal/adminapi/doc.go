// Package adminapi is the admin API's wire format and its one client (layer 1): the request and
// response types the admin server (internal/admin) answers with, and [Client], which the CLI
// (internal/cli) and the load generator call the API with, so that server and clients cannot drift
// apart. It imports nothing of Gatehouse above the model (internal/spec): the views copy the few
// fields they show from the registry's and the stores' records, which is what a wire format is.
package adminapi
