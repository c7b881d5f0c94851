package respolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// maxDepth bounds how deeply a document's JSON may nest. The deepest place a policy has values is
// a condition's list of values: document, Statement list, statement, Condition, operator, key,
// list — seven levels.
const maxDepth = 8

// node is a JSON value as read from the document, keeping the order of an object's keys.
type node struct {
	kind nodeKind
	str  string  // kindString
	list []*node // kindList
	obj  []field // kindObject
	// dup is a key the object has more than once, if hasDup.
	dup    string
	hasDup bool
}

type field struct {
	key string
	val *node
}

type nodeKind uint8

const (
	kindString nodeKind = iota
	kindList
	kindObject
	kindNumber
	kindBool
	kindNull
)

func (k nodeKind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindList:
		return "a list"
	case kindObject:
		return "an object"
	case kindNumber:
		return "a number"
	case kindBool:
		return "a boolean"
	}
	return "null"
}

// get returns the value of key in an object, or nil.
func (n *node) get(key string) *node {
	for _, f := range n.obj {
		if f.key == key {
			return f.val
		}
	}
	return nil
}

// readTree reads doc, already checked to be one valid JSON value, into a tree.
func readTree(doc []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := readNode(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("the document has more than one JSON value")
	}
	return n, nil
}

func readNode(dec *json.Decoder, depth int) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case string:
		return &node{kind: kindString, str: t}, nil
	case json.Number:
		return &node{kind: kindNumber, str: string(t)}, nil
	case bool:
		return &node{kind: kindBool}, nil
	case nil:
		return &node{kind: kindNull}, nil
	case json.Delim:
		if depth >= maxDepth {
			return nil, errors.New("the document nests JSON more than 8 levels deep, deeper than any policy")
		}
		if t == '[' {
			n := &node{kind: kindList}
			for dec.More() {
				v, err := readNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.list = append(n.list, v)
			}
			_, err := dec.Token() // ]
			return n, err
		}
		n := &node{kind: kindObject}
		var seen map[string]bool
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := tok.(string)
			if !n.hasDup {
				if seen == nil {
					seen = make(map[string]bool)
				}
				if seen[key] {
					n.dup, n.hasDup = key, true
				}
				seen[key] = true
			}
			v, err := readNode(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.obj = append(n.obj, field{key, v})
		}
		_, err := dec.Token() // }
		return n, err
	}
	return nil, errors.New("unexpected JSON token")
}
