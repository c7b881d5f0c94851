// Package adminapi holds the admin API's request and response types, shared by the admin server
// and its clients (the CLI, the load generator), so the two cannot drift apart.
package adminapi
