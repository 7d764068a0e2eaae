package atlas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// decodeError explains why data did not decode into a rawResult, naming
// the field ("prb_id: not a number (\"x\")", "resultset[2]: time: …"): a
// number error from a custom decoder carries no field name, and
// encoding/json names Go fields ("rawResult.type"), not the user's. It
// runs only on the error path, so decoding twice costs nothing on good
// input.
func decodeError(data []byte, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("decode: truncated record (the JSON ends early): %w", err)
	}
	if path, ferr := findBadField(data, reflect.TypeOf(rawResult{})); path != "" {
		return fmt.Errorf("%s: %w", path, ferr)
	}
	return fmt.Errorf("decode: %w", err)
}

// findBadField decodes data's fields one by one into the fields of the
// struct type t and returns the JSON path of the first that fails, in key
// order.
func findBadField(data []byte, t reflect.Type) (string, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return "", nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f, ok := fieldByTag(t, k)
		if !ok {
			continue
		}
		v := reflect.New(f.Type)
		err := json.Unmarshal(obj[k], v.Interface())
		if err == nil {
			continue
		}
		// Look inside a struct or a slice of structs for the deeper name.
		switch {
		case f.Type.Kind() == reflect.Struct:
			if p, e := findBadField(obj[k], f.Type); p != "" {
				return k + "." + p, e
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			var elems []json.RawMessage
			if json.Unmarshal(obj[k], &elems) == nil {
				for i, el := range elems {
					if p, e := findBadField(el, f.Type.Elem()); p != "" {
						return fmt.Sprintf("%s[%d].%s", k, i, p), e
					}
				}
			}
		}
		return k, plainError(err)
	}
	return "", nil
}

// fieldByTag returns the field of struct t whose json name is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// plainError says what a type mismatch is in JSON words.
func plainError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Slice:
			want = "array"
		case reflect.Struct, reflect.Map:
			want = "object"
		}
		return fmt.Errorf("want a JSON %s, got %s", want, te.Value)
	}
	if bytes.HasPrefix([]byte(err.Error()), []byte("json: ")) {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return err
}
