// Package functions owns what a function is before it runs: its source, and building Go source into a
// WebAssembly module. Later it also owns bundles, versions and aliases.
package functions
