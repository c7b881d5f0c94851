package stackfile

import (
	"reflect"
	"slices"
	"strings"

	"gatehouse.dev/gatehouse/internal/spec"
)

// Keys of the spec types come from their JSON tags, so that a setting added to spec (a field with
// its tag, the stack file's key) is read from stack files without a change here. The decoder's own
// code handles the keys that need more than their type says (shorthands, files, secrets, defaults
// that depend on other keys); decodeRest reads the others by their Go type.

// keysOf returns the stack-file keys of the struct v: its fields' JSON names, and extra.
func keysOf(v any, extra ...string) []string {
	t := reflect.TypeOf(v)
	keys := slices.Clone(extra)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && !slices.Contains(keys, name) {
			keys = append(keys, name)
		}
	}
	return keys
}

var durationType = reflect.TypeFor[spec.Duration]()

// decodeRest reads into *ptr, a spec struct, each entry of f whose key is not in handled, by the
// type of the field whose JSON name it is: text, true/false, whole numbers, numbers, durations,
// lists of text and maps of text.
func (d *decoder) decodeRest(path []string, f map[string]entry, ptr any, handled ...string) error {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		e, ok := f[name]
		if !ok || name == "" || name == "-" || slices.Contains(handled, name) {
			continue
		}
		if err := d.decodeValue(sub(path, name), e, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeValue(path []string, e entry, field reflect.Value) error {
	if field.Type() == durationType {
		dur, err := d.duration(path, e.val)
		if err == nil {
			field.Set(reflect.ValueOf(dur))
		}
		return err
	}
	switch field.Kind() {
	case reflect.String:
		s, err := d.str(path, e.val)
		if err == nil {
			field.SetString(s)
		}
		return err
	case reflect.Bool:
		b, err := d.boolean(path, e.val)
		if err == nil {
			field.SetBool(b)
		}
		return err
	case reflect.Int:
		n, err := d.integer(path, e.val, "")
		if err == nil {
			field.SetInt(int64(n))
		}
		return err
	case reflect.Float64:
		n, err := d.number(path, e.val, "")
		if err == nil {
			field.SetFloat(n)
		}
		return err
	case reflect.Slice:
		if field.Type().Elem().Kind() == reflect.String {
			l, err := d.strList(path, e.val)
			if err == nil {
				field.Set(reflect.ValueOf(l).Convert(field.Type()))
			}
			return err
		}
	case reflect.Map:
		if field.Type().Key().Kind() == reflect.String && field.Type().Elem().Kind() == reflect.String {
			es, err := d.entries(path, e.val)
			if err != nil {
				return err
			}
			m := reflect.MakeMapWithSize(field.Type(), len(es))
			for _, me := range es {
				s, err := d.text(sub(path, me.key), me.val)
				if err != nil {
					return err
				}
				m.SetMapIndex(reflect.ValueOf(me.key), reflect.ValueOf(s))
			}
			field.Set(m)
			return nil
		}
	}
	// A setting of another type needs its own code in the decoder; TestDecodeRestCoversSpec finds one
	// that lacks it.
	return d.errAt(e.keyAt, path, "this Gatehouse cannot read this setting (a %s)", field.Type())
}
