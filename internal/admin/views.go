package admin

import (
	"strconv"

	"gatehouse.dev/gatehouse/functions"
	"gatehouse.dev/gatehouse/internal/adminapi"
)

// The admin API's views (package adminapi) are built here from the registry's records: they leave out
// what the API never shows: sealed secrets, IDs, hashes of manifests.

func functionView(f functions.FunctionRecord) adminapi.FunctionView {
	return adminapi.FunctionView{Name: f.Name, LatestVersion: f.LatestVersion, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt}
}

func versionView(v functions.VersionRecord) adminapi.VersionView {
	m := v.Manifest
	view := adminapi.VersionView{
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
		SnapStart:      m.SnapStart,
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

func versionViews(vs []functions.VersionRecord) []adminapi.VersionView {
	out := make([]adminapi.VersionView, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionView(v))
	}
	return out
}

func aliasView(a functions.AliasRecord) adminapi.AliasView {
	target := functions.LatestQualifier
	if a.Version != 0 {
		target = strconv.Itoa(a.Version)
	}
	return adminapi.AliasView{
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

func aliasViews(as []functions.AliasRecord) []adminapi.AliasView {
	out := make([]adminapi.AliasView, 0, len(as))
	for _, a := range as {
		out = append(out, aliasView(a))
	}
	return out
}
