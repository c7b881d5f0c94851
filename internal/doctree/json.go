package doctree

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// FromJSON reads JSON text (already known to be valid JSON) as a tree, every node placed at at:
// numbers keep their text, a repeated key keeps its last value, as JSON decoders take it.
func FromJSON(text []byte, at *Node) (*Node, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	return jsonValue(dec, at, 0)
}

// jsonValue reads the next JSON value of dec as a tree.
func jsonValue(dec *json.Decoder, at *Node, depth int) (*Node, error) {
	if depth > 64 {
		return nil, errors.New("nested more than 64 levels deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			l := NewList(at)
			for dec.More() {
				v, err := jsonValue(dec, at, depth+1)
				if err != nil {
					return nil, err
				}
				l.Items = append(l.Items, v)
			}
			_, err := dec.Token()
			return l, err
		}
		m := NewMap(at)
		index := map[string]int{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := jsonValue(dec, at, depth+1)
			if err != nil {
				return nil, err
			}
			if i, ok := index[k]; ok {
				m.Vals[i] = v // the last of a repeated key, as JSON decoders take it
				continue
			}
			index[k] = len(m.Keys)
			m.Keys, m.Vals = append(m.Keys, k), append(m.Vals, v)
		}
		_, err := dec.Token()
		return m, err
	case string:
		return Str(t, at), nil
	case json.Number:
		n := Str(string(t), at)
		n.Kind = Number
		return n, nil
	case bool:
		n := Str(strconv.FormatBool(t), at)
		n.Kind = Bool
		return n, nil
	}
	n := NewMap(at)
	n.Kind = Null
	return n, nil
}
