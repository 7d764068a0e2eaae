// Package fieldcover finds the fields of a wire type that no test fixture
// sets, for the tests that keep hand-written codecs in step with their
// types: a codec test compares the codec with encoding/json over fixtures,
// so a field that every fixture leaves at its zero value is not compared,
// and a codec that forgot it would pass. With this check, adding a field
// to a wire type fails the codec's tests until a fixture sets it, and
// then the comparison itself fails until the codec handles it.
package fieldcover

import (
	"reflect"
	"slices"
	"strings"
)

// Paths returns the paths of the encoded fields of t (a struct, or a
// pointer, slice or array of one), as "Type.Field.Sub[].Leaf": every
// exported field that encoding/json writes (tag not "-"), through
// pointers, slices, arrays and nested structs. Structs without exported
// fields (time.Time), maps and byte slices are leaves.
func Paths(t reflect.Type) []string {
	var out []string
	walkType(t, typeName(t), map[reflect.Type]bool{}, func(p string) { out = append(out, p) })
	slices.Sort(out)
	return out
}

// Unset returns the paths of Paths(t) that no value of vs (each a t or a
// pointer to one) sets to a non-zero value anywhere in it. An empty
// result means the values exercise every field.
func Unset(t reflect.Type, vs ...any) []string {
	set := map[string]bool{}
	for _, v := range vs {
		walkValue(reflect.ValueOf(v), typeName(t), set)
	}
	var out []string
	for _, p := range Paths(t) {
		if !set[p] {
			out = append(out, p)
		}
	}
	return out
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t.Name()
}

// isLeaf tells a type whose fields are not walked.
func isLeaf(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer:
		return isLeaf(t.Elem())
	case reflect.Slice, reflect.Array:
		return t.Elem().Kind() == reflect.Uint8 || isLeaf(t.Elem())
	case reflect.Struct:
		for f := range t.Fields() {
			if f.IsExported() {
				return false
			}
		}
	}
	return true
}

// encoded tells whether encoding/json writes f.
func encoded(f reflect.StructField) bool {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return f.IsExported() && name != "-"
}

func walkType(t reflect.Type, path string, onStack map[reflect.Type]bool, emit func(string)) {
	switch t.Kind() {
	case reflect.Pointer:
		walkType(t.Elem(), path, onStack, emit)
		return
	case reflect.Slice, reflect.Array:
		if !isLeaf(t) {
			walkType(t.Elem(), path+"[]", onStack, emit)
		}
		return
	case reflect.Struct:
	default:
		return
	}
	if onStack[t] {
		return // a recursive type: its fields are listed once
	}
	onStack[t] = true
	defer delete(onStack, t)
	for f := range t.Fields() {
		if !encoded(f) {
			continue
		}
		p := path + "." + f.Name
		emit(p)
		if !isLeaf(f.Type) {
			walkType(f.Type, p, onStack, emit)
		}
	}
}

// walkValue marks in set the paths of v's non-zero fields, v being at
// path.
func walkValue(v reflect.Value, path string, set map[string]bool) {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		if isLeaf(v.Type()) {
			return
		}
		for i := range v.Len() {
			walkValue(v.Index(i), path+"[]", set)
		}
	case reflect.Struct:
		for f := range v.Type().Fields() {
			if !encoded(f) {
				continue
			}
			fv := v.FieldByIndex(f.Index)
			p := path + "." + f.Name
			if !fv.IsZero() {
				set[p] = true
			}
			if !isLeaf(f.Type) {
				walkValue(fv, p, set)
			}
		}
	}
}
