package admin

import (
	"strconv"
	"time"

	"gatehouse.dev/gatehouse/functions"
)

// The JSON shapes of the control-plane API. They are built from the registry's records and leave out
// what the API never shows: sealed secrets, IDs, hashes of manifests.

// FunctionView is a function as the API shows it in lists.
type FunctionView struct {
	Name          string    `json:"name"`
	LatestVersion int       `json:"latestVersion"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
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
	Description    string            `json:"description"`
	CreatedAt      time.Time         `json:"createdAt"`
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

func functionView(f functions.FunctionRecord) FunctionView {
	return FunctionView{Name: f.Name, LatestVersion: f.LatestVersion, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt}
}

func versionView(v functions.VersionRecord) VersionView {
	m := v.Manifest
	view := VersionView{
		Function:       v.Function,
		Version:        v.Version,
		ModuleSHA256:   v.ModuleSHA256,
		ModuleSize:     v.ModuleSize,
		ABI:            m.ABI,
		MemoryMB:       m.MemoryMB,
		Timeout:        m.Timeout,
		Environment:    map[string]string{},
		Secrets:        []string{},
		MaxConcurrency: m.MaxConcurrency,
		MinWarm:        m.MinWarm,
		IdleTimeout:    m.IdleTimeout,
		Description:    v.Description,
		CreatedAt:      v.CreatedAt,
	}
	// The record's environment holds no secret values; leave out any secret's name all the same.
	secret := map[string]bool{}
	for _, s := range m.Secrets {
		secret[s] = true
		view.Secrets = append(view.Secrets, s)
	}
	for k, val := range m.Environment {
		if !secret[k] {
			view.Environment[k] = val
		}
	}
	return view
}

func versionViews(vs []functions.VersionRecord) []VersionView {
	out := make([]VersionView, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionView(v))
	}
	return out
}

func aliasView(a functions.AliasRecord) AliasView {
	target := functions.LatestQualifier
	if a.Version != 0 {
		target = strconv.Itoa(a.Version)
	}
	return AliasView{
		Function:          a.Function,
		Name:              a.Name,
		Version:           a.Version,
		Target:            target,
		AdditionalVersion: a.AdditionalVersion,
		AdditionalWeight:  a.AdditionalWeight,
		Description:       a.Description,
		UpdatedAt:         a.UpdatedAt,
		Revision:          a.Revision,
	}
}

func aliasViews(as []functions.AliasRecord) []AliasView {
	out := make([]AliasView, 0, len(as))
	for _, a := range as {
		out = append(out, aliasView(a))
	}
	return out
}
