package fieldcover

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

type leaf struct {
	N    int
	Skip string `json:"-"`
	priv int
}

type node struct {
	Name  string `json:"name,omitempty"`
	At    time.Time
	Raw   []byte
	Tags  map[string]int
	Leaf  *leaf
	Kids  []leaf
	Next  *node // recursive: listed once
	Arr   [2]leaf
	Embed leaf
}

func TestPaths(t *testing.T) {
	want := []string{"node.Arr", "node.Arr[].N", "node.At", "node.Embed", "node.Embed.N", "node.Kids", "node.Kids[].N",
		"node.Leaf", "node.Leaf.N", "node.Name", "node.Next", "node.Raw", "node.Tags"}
	if got := Paths(reflect.TypeFor[node]()); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestUnset(t *testing.T) {
	tests := []struct {
		name string
		vs   []any
		want []string
	}{
		{"nothing", nil, Paths(reflect.TypeFor[node]())},
		{"zero values set nothing", []any{node{Leaf: &leaf{}, Kids: []leaf{{}}}}, allBut("node.Leaf", "node.Kids")},
		{"all set across two values, through pointers and slices", []any{
			&node{Name: "a", At: time.Unix(1, 0), Raw: []byte{1}, Tags: map[string]int{}, Leaf: &leaf{N: 1}},
			node{Kids: []leaf{{}, {N: 2}}, Next: &node{}, Arr: [2]leaf{{}, {N: 1}}, Embed: leaf{N: 3}},
		}, nil},
		{"a nil pointer hides its fields", []any{node{Name: "a", At: time.Unix(1, 0), Raw: []byte{1}, Tags: map[string]int{},
			Kids: []leaf{{N: 2}}, Next: &node{}, Arr: [2]leaf{{N: 1}}, Embed: leaf{N: 3}}}, []string{"node.Leaf", "node.Leaf.N"}},
		{"only fields not encoded set", []any{node{Leaf: &leaf{Skip: "x", priv: 1}}}, allBut("node.Leaf")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Unset(reflect.TypeFor[node](), tc.vs...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// allBut is every path of node except set.
func allBut(set ...string) []string {
	return slices.DeleteFunc(Paths(reflect.TypeFor[node]()), func(p string) bool { return slices.Contains(set, p) })
}
