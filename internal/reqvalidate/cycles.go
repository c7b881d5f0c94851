package reqvalidate

import (
	"cmp"
	"maps"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// findLoop returns the location of a schema reachable from root that leads back to itself
// without moving to another value: {"$ref": "#"}, or {"allOf": [{"$ref": "#/definitions/a"}]}
// with a definition a that refers back. The validator fails every value that reaches such a
// schema ("reference cycle"), so Compile refuses it instead. It returns "" when there is none.
//
// seen and state carry what earlier calls found, so that the schemas of an API are walked once.
func findLoop(root *jsonschema.Schema, seen map[*jsonschema.Schema]bool, state map[*jsonschema.Schema]uint8) string {
	var nodes []*jsonschema.Schema
	stack := []*jsonschema.Schema{root}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s == nil || seen[s] {
			continue
		}
		seen[s] = true
		nodes = append(nodes, s)
		stack = append(stack, sameValue(s)...)
		stack = append(stack, otherValues(s)...)
	}
	// Depth-first over the edges that stay on the same value: 1 is on the current path, 2 done.
	var visit func(s *jsonschema.Schema) string
	visit = func(s *jsonschema.Schema) string {
		switch state[s] {
		case 1:
			return s.Location
		case 2:
			return ""
		}
		state[s] = 1
		for _, next := range sameValue(s) {
			if loc := visit(next); loc != "" {
				return loc
			}
		}
		state[s] = 2
		return ""
	}
	for _, s := range nodes {
		if loc := visit(s); loc != "" {
			return loc
		}
	}
	return ""
}

// sameValue returns the subschemas the validator applies to the value s is applied to, as it
// does: before draft 2019-09, a schema with $ref is only its $ref. $recursiveRef and $dynamicRef
// are left out: where they lead is decided while validating.
func sameValue(s *jsonschema.Schema) []*jsonschema.Schema {
	if s.Bool != nil {
		return nil
	}
	if s.Ref != nil && s.DraftVersion < 2019 {
		return []*jsonschema.Schema{s.Ref}
	}
	var out []*jsonschema.Schema
	for _, sch := range []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else} {
		if sch != nil {
			out = append(out, sch)
		}
	}
	out = append(out, s.AllOf...)
	out = append(out, s.AnyOf...)
	out = append(out, s.OneOf...)
	for _, name := range slices.Sorted(maps.Keys(s.DependentSchemas)) {
		out = append(out, s.DependentSchemas[name])
	}
	for _, name := range slices.Sorted(maps.Keys(s.Dependencies)) {
		if sch, ok := s.Dependencies[name].(*jsonschema.Schema); ok {
			out = append(out, sch)
		}
	}
	return out
}

// otherValues returns the subschemas of s that apply to other values: its properties, items and
// the like.
func otherValues(s *jsonschema.Schema) []*jsonschema.Schema {
	if s.Bool != nil {
		return nil
	}
	var out []*jsonschema.Schema
	add := func(v any) {
		switch v := v.(type) {
		case *jsonschema.Schema:
			if v != nil {
				out = append(out, v)
			}
		case []*jsonschema.Schema:
			out = append(out, v...)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		out = append(out, s.Properties[name])
	}
	patterns := slices.SortedFunc(maps.Keys(s.PatternProperties), func(a, b jsonschema.Regexp) int {
		return cmp.Compare(a.String(), b.String())
	})
	for _, re := range patterns {
		out = append(out, s.PatternProperties[re])
	}
	add(s.AdditionalProperties)
	add(s.Items)
	add(s.AdditionalItems)
	add(s.PrefixItems)
	for _, sch := range []*jsonschema.Schema{s.Items2020, s.Contains, s.PropertyNames, s.UnevaluatedProperties,
		s.UnevaluatedItems, s.ContentSchema, s.RecursiveRef} {
		add(sch)
	}
	if s.DynamicRef != nil {
		add(s.DynamicRef.Ref)
	}
	return out
}
