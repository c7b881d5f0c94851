// Package functions owns what a function is before it runs: building Go source into a WebAssembly
// module, and bundles — a zip of a manifest (function.yaml) and the module — with their validation.
// Versions and aliases come with deploys.
package functions
