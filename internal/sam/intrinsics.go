package sam

import (
	"fmt"
	"strconv"
	"strings"

	"gatehouse.dev/gatehouse/internal/doctree"
	"gatehouse.dev/gatehouse/internal/spec"
)

// The intrinsic functions that matter locally: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If (with the
// template's Conditions), Fn::Select, Fn::Split, Fn::FindInMap, Fn::Equals/And/Or/Not and
// Condition, in their long (Fn::Sub: …) and short (!Sub …) forms. They are evaluated as the
// template is read, against the parameters and the resources' logical ids; what needs a deployed
// stack (Fn::ImportValue, Fn::GetAZs…) is refused with its place.

// noValueText stands for AWS::NoValue: the key that gets it is removed.
const noValueText = "\x00AWS::NoValue"

// longForm is the long name of a short-form tag ("!Sub" → "Fn::Sub"); "" for other tags.
func longForm(tag string) string {
	switch tag {
	case "!Ref":
		return "Ref"
	case "!Condition":
		return "Condition"
	case "!GetAtt", "!Sub", "!Join", "!If", "!Select", "!Split", "!FindInMap", "!Equals", "!And", "!Or", "!Not",
		"!ImportValue", "!GetAZs", "!Base64", "!Cidr", "!Transform", "!ToJsonString", "!Length":
		return "Fn::" + tag[1:]
	}
	return ""
}

// intrinsic returns the function name and argument of n when n is an intrinsic function call.
func intrinsic(n *doctree.Node) (string, *doctree.Node, bool) {
	if n == nil {
		return "", nil, false
	}
	if n.Tag != "" {
		if name := longForm(n.Tag); name != "" {
			arg := *n
			arg.Tag = ""
			return name, &arg, true
		}
		return "", nil, false
	}
	if n.Kind == doctree.Map && len(n.Keys) == 1 && (n.Keys[0] == "Ref" || n.Keys[0] == "Condition" && n.Vals[0].Kind == doctree.String || strings.HasPrefix(n.Keys[0], "Fn::")) {
		return n.Keys[0], n.Vals[0], true
	}
	return "", nil, false
}

// eval evaluates every intrinsic function in n, returning a tree of plain values. A value that
// comes out as AWS::NoValue is removed from its mapping or list.
func (r *reader) eval(n *doctree.Node) (*doctree.Node, error) {
	if n == nil {
		return nil, nil
	}
	if n.Tag != "" && longForm(n.Tag) == "" {
		return nil, r.Errorf(n, "the tag %s is not a CloudFormation intrinsic function", n.Tag)
	}
	if fn, arg, ok := intrinsic(n); ok {
		return r.call(n, fn, arg)
	}
	switch n.Kind {
	case doctree.Map:
		out := doctree.NewMap(n)
		for i, k := range n.Keys {
			v, err := r.eval(n.Vals[i])
			if err != nil {
				return nil, err
			}
			if !isNoValue(v) {
				out.Set(k, v)
			}
		}
		return out, nil
	case doctree.List:
		out := doctree.NewList(n)
		for _, it := range n.Items {
			v, err := r.eval(it)
			if err != nil {
				return nil, err
			}
			if !isNoValue(v) {
				out.Items = append(out.Items, v)
			}
		}
		return out, nil
	}
	return n, nil
}

func isNoValue(n *doctree.Node) bool {
	return n != nil && n.Kind == doctree.String && n.Text == noValueText
}

// evalString evaluates n and wants a string (a number or boolean is taken as its text).
func (r *reader) evalString(n *doctree.Node, what string) (string, error) {
	v, err := r.eval(n)
	if err != nil {
		return "", err
	}
	if !v.IsScalar() {
		return "", r.Errorf(n, "%s: want a string, not %s", what, v.Kind)
	}
	return v.Text, nil
}

func (r *reader) evalList(n *doctree.Node, what string, size int) ([]*doctree.Node, error) {
	v, err := r.eval(n)
	if err != nil {
		return nil, err
	}
	if v.Kind != doctree.List || size > 0 && len(v.Items) != size {
		if size > 0 {
			return nil, r.Errorf(n, "%s: want a list of %d items", what, size)
		}
		return nil, r.Errorf(n, "%s: want a list", what)
	}
	return v.Items, nil
}

func (r *reader) call(at *doctree.Node, fn string, arg *doctree.Node) (*doctree.Node, error) {
	switch fn {
	case "Ref":
		if arg.Kind != doctree.String {
			return nil, r.Errorf(at, "Ref: want the name of a parameter, a resource or a pseudo parameter")
		}
		if l, ok := r.lists[arg.Text]; ok {
			var items []*doctree.Node
			for _, p := range l {
				items = append(items, doctree.Str(p, at))
			}
			return doctree.NewList(at, items...), nil
		}
		s, err := r.ref(at, arg.Text)
		if err != nil {
			return nil, err
		}
		return doctree.Str(s, at), nil
	case "Fn::GetAtt":
		var name, attr string
		switch arg.Kind {
		case doctree.String:
			name, attr, _ = strings.Cut(arg.Text, ".")
		case doctree.List:
			items, err := r.evalList(arg, fn, 2)
			if err != nil {
				return nil, err
			}
			name, attr = items[0].Scalar(), items[1].Scalar()
		}
		s, err := r.getAtt(at, name, attr)
		if err != nil {
			return nil, err
		}
		return doctree.Str(s, at), nil
	case "Fn::Sub":
		return r.sub(at, arg)
	case "Fn::Join":
		items, err := r.evalList(arg, fn, 2)
		if err != nil {
			return nil, err
		}
		if items[1].Kind != doctree.List {
			return nil, r.Errorf(arg, "Fn::Join: want [DELIMITER, [VALUES…]]")
		}
		parts := make([]string, 0, len(items[1].Items))
		for _, it := range items[1].Items {
			if !it.IsScalar() {
				return nil, r.Errorf(it, "Fn::Join: want strings to join, not %s", it.Kind)
			}
			parts = append(parts, it.Text)
		}
		return doctree.Str(strings.Join(parts, items[0].Scalar()), at), nil
	case "Fn::If":
		if arg.Kind != doctree.List || len(arg.Items) != 3 {
			return nil, r.Errorf(at, "Fn::If: want [CONDITION, VALUE_IF_TRUE, VALUE_IF_FALSE]")
		}
		ok, err := r.condition(arg.Items[0], arg.Items[0].Scalar())
		if err != nil {
			return nil, err
		}
		if ok {
			return r.eval(arg.Items[1])
		}
		return r.eval(arg.Items[2])
	case "Fn::Select":
		items, err := r.evalList(arg, fn, 2)
		if err != nil {
			return nil, err
		}
		i, err := strconv.Atoi(items[0].Scalar())
		if err != nil || items[1].Kind != doctree.List || i < 0 || i >= len(items[1].Items) {
			return nil, r.Errorf(at, "Fn::Select: want [INDEX, [VALUES…]] with the index in the list")
		}
		return items[1].Items[i], nil
	case "Fn::Split":
		items, err := r.evalList(arg, fn, 2)
		if err != nil {
			return nil, err
		}
		var parts []*doctree.Node
		for _, p := range strings.Split(items[1].Scalar(), items[0].Scalar()) {
			parts = append(parts, doctree.Str(p, at))
		}
		return doctree.NewList(at, parts...), nil
	case "Fn::FindInMap":
		items, err := r.evalList(arg, fn, 3)
		if err != nil {
			return nil, err
		}
		v := r.mappings.Get(items[0].Scalar()).Get(items[1].Scalar()).Get(items[2].Scalar())
		if v == nil {
			return nil, r.Errorf(at, "Fn::FindInMap: Mappings has no %s.%s.%s", items[0].Scalar(), items[1].Scalar(), items[2].Scalar())
		}
		return r.eval(v)
	case "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition":
		ok, err := r.conditionFn(at, fn, arg)
		if err != nil {
			return nil, err
		}
		return &doctree.Node{Kind: doctree.Bool, Text: strconv.FormatBool(ok), Line: at.Line, Column: at.Column, Path: at.Path}, nil
	}
	return nil, r.Errorf(at, "%s needs a deployed AWS stack and is not evaluated locally: replace it with a value, or a parameter", fn)
}

// ref is the value of Ref NAME.
func (r *reader) ref(at *doctree.Node, name string) (string, error) {
	switch name {
	case "AWS::Region":
		return r.opts.Region, nil
	case "AWS::AccountId":
		return r.opts.AccountID, nil
	case "AWS::StackName":
		return r.stackName, nil
	case "AWS::StackId":
		return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/local", r.opts.Region, r.opts.AccountID, r.stackName), nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValueText, nil
	case "AWS::NotificationARNs":
		return "", nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if fn, ok := r.functionNames[name]; ok {
		return fn, nil
	}
	if r.resources.Get(name) != nil {
		return name, nil // other resources are known by their logical ids
	}
	return "", r.Errorf(at, "Ref %s: no parameter or resource of that name in the template", name)
}

// getAtt is the value of Fn::GetAtt NAME.ATTR.
func (r *reader) getAtt(at *doctree.Node, name, attr string) (string, error) {
	res := r.resources.Get(name)
	if res == nil {
		return "", r.Errorf(at, "Fn::GetAtt %s.%s: no resource %s in the template", name, attr, name)
	}
	if fn, ok := r.functionNames[name]; ok {
		switch attr {
		case "Arn":
			return spec.FunctionARN(r.opts.Region, r.opts.AccountID, fn), nil
		}
	}
	switch attr {
	case "Arn":
		return fmt.Sprintf("arn:aws:local:%s:%s:%s", r.opts.Region, r.opts.AccountID, name), nil
	case "ApiEndpoint", "ApiId", "RootResourceId":
		return name, nil
	}
	return name + "." + attr, nil
}

// sub evaluates Fn::Sub: a string, or [STRING, {NAME: VALUE…}], with ${NAME}, ${NAME.ATTR} and
// ${!literal}.
func (r *reader) sub(at, arg *doctree.Node) (*doctree.Node, error) {
	tmpl := arg
	vars := map[string]string{}
	if arg.Kind == doctree.List {
		if len(arg.Items) != 2 {
			return nil, r.Errorf(at, "Fn::Sub: want a string, or [STRING, {NAME: VALUE…}]")
		}
		tmpl = arg.Items[0]
		m := arg.Items[1]
		for i, k := range m.Keys {
			v, err := r.evalString(m.Vals[i], "Fn::Sub variable "+k)
			if err != nil {
				return nil, err
			}
			vars[k] = v
		}
	}
	if tmpl.Kind != doctree.String {
		return nil, r.Errorf(at, "Fn::Sub: want a string to substitute in")
	}
	s := tmpl.Text
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, r.Errorf(at, "Fn::Sub: ${ without a closing }")
		}
		name := s[i+2 : i+end]
		s = s[i+end+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		if v, ok := vars[name]; ok {
			b.WriteString(v)
			continue
		}
		var v string
		var err error
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = r.getAtt(at, res, attr)
		} else {
			v, err = r.ref(at, name)
		}
		if err != nil {
			return nil, err
		}
		b.WriteString(v)
	}
	return doctree.Str(b.String(), at), nil
}

// condition is the value of the template's condition name.
func (r *reader) condition(at *doctree.Node, name string) (bool, error) {
	if v, ok := r.conditions[name]; ok {
		return v, nil
	}
	def := r.conditionDefs.Get(name)
	if def == nil {
		return false, r.Errorf(at, "no condition %q in the template's Conditions", name)
	}
	if r.evaluating[name] {
		return false, r.Errorf(at, "condition %s refers to itself", name)
	}
	r.evaluating[name] = true
	defer delete(r.evaluating, name)
	fn, arg, ok := intrinsic(def)
	if !ok {
		return false, r.Errorf(def, "condition %s: want Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition", name)
	}
	v, err := r.conditionFn(def, fn, arg)
	if err != nil {
		return false, err
	}
	r.conditions[name] = v
	return v, nil
}

func (r *reader) conditionFn(at *doctree.Node, fn string, arg *doctree.Node) (bool, error) {
	switch fn {
	case "Condition":
		return r.condition(at, arg.Scalar())
	case "Fn::Equals":
		items, err := r.evalList(arg, fn, 2)
		if err != nil {
			return false, err
		}
		return items[0].Scalar() == items[1].Scalar(), nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		if arg.Kind != doctree.List || len(arg.Items) == 0 {
			return false, r.Errorf(at, "%s: want a list of conditions", fn)
		}
		var vals []bool
		for _, c := range arg.Items {
			v, err := r.eval(c)
			if err != nil {
				return false, err
			}
			b, err := strconv.ParseBool(v.Scalar())
			if v.Kind == doctree.String && v.Tag == "" && c.Kind == doctree.String {
				b, err = r.condition(c, c.Text) // a condition named as a plain string
			}
			if err != nil {
				return false, r.Errorf(c, "%s: want a condition", fn)
			}
			vals = append(vals, b)
		}
		switch fn {
		case "Fn::Not":
			return !vals[0], nil
		case "Fn::And":
			for _, v := range vals {
				if !v {
					return false, nil
				}
			}
			return true, nil
		default:
			for _, v := range vals {
				if v {
					return true, nil
				}
			}
			return false, nil
		}
	}
	return false, r.Errorf(at, "%s is not a condition function: want Fn::Equals, Fn::And, Fn::Or, Fn::Not or Condition", fn)
}
