package stackfile

import (
	"reflect"
	"slices"
	"strings"

	"gatehouse.dev/gatehouse/internal/spec"
	"gatehouse.dev/gatehouse/internal/yamldecode"
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
func (d *decoder) decodeRest(path []string, f map[string]yamldecode.Entry, ptr any, handled ...string) error {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		e, ok := f[name]
		if !ok || name == "" || name == "-" || slices.Contains(handled, name) {
			continue
		}
		if err := d.decodeValue(yamldecode.Sub(path, name), e, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) decodeValue(path []string, e yamldecode.Entry, field reflect.Value) error {
	if field.Type() == durationType {
		dur, err := d.duration(path, e.Val)
		if err == nil {
			field.Set(reflect.ValueOf(dur))
		}
		return err
	}
	switch field.Kind() {
	case reflect.String:
		s, err := d.Str(path, e.Val)
		if err == nil {
			field.SetString(s)
		}
		return err
	case reflect.Bool:
		b, err := d.Bool(path, e.Val)
		if err == nil {
			field.SetBool(b)
		}
		return err
	case reflect.Int:
		n, err := d.Integer(path, e.Val, "")
		if err == nil {
			field.SetInt(int64(n))
		}
		return err
	case reflect.Float64:
		n, err := d.Number(path, e.Val, "")
		if err == nil {
			field.SetFloat(n)
		}
		return err
	case reflect.Slice:
		if field.Type().Elem().Kind() == reflect.String {
			l, err := d.StrList(path, e.Val)
			if err == nil {
				field.Set(reflect.ValueOf(l).Convert(field.Type()))
			}
			return err
		}
	case reflect.Map:
		if field.Type().Key().Kind() == reflect.String && field.Type().Elem().Kind() == reflect.String {
			es, err := d.Entries(path, e.Val)
			if err != nil {
				return err
			}
			m := reflect.MakeMapWithSize(field.Type(), len(es))
			for _, me := range es {
				s, err := d.Text(yamldecode.Sub(path, me.Key), me.Val)
				if err != nil {
					return err
				}
				m.SetMapIndex(reflect.ValueOf(me.Key), reflect.ValueOf(s))
			}
			field.Set(m)
			return nil
		}
		if field.Type().Key().Kind() == reflect.String && field.Type().Elem().Kind() == reflect.Map {
			// A map of maps of text, such as responseParameters by status code.
			es, err := d.Entries(path, e.Val)
			if err != nil {
				return err
			}
			m := reflect.MakeMapWithSize(field.Type(), len(es))
			for _, me := range es {
				inner := reflect.New(field.Type().Elem()).Elem()
				if err := d.decodeValue(yamldecode.Sub(path, me.Key), me, inner); err != nil {
					return err
				}
				m.SetMapIndex(reflect.ValueOf(me.Key), inner)
			}
			field.Set(m)
			return nil
		}
	}
	// A setting of another type needs its own code in the decoder; TestDecodeRestCoversSpec finds one
	// that lacks it.
	return d.Errorf(e.KeyAt, path, "this Gatehouse cannot read this setting (a %s)", field.Type())
}
