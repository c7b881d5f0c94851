// Package functions owns what a function is before it runs: building Go source into a WebAssembly
// module; bundles — a zip of a manifest (function.yaml) and the module — with their validation; and
// the registry of functions, immutable numbered versions and aliases, kept in JetStream.
package functions
