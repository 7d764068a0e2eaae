package catchment

import "testing"

// TestSiteCellsOrder: the group × site matrix is ordered by group, then
// place, whether the keys are ordered directly or (with a NUL in a key)
// through the joined key strings.
func TestSiteCellsOrder(t *testing.T) {
	tests := []struct {
		name                 string
		groupKeys, placeKeys []string
		groups, places       []int32
		want                 []string // group/place, in order
	}{
		{"plain", []string{"b", "a"}, []string{"x", "ams", "?id"},
			[]int32{0, 1, 0, 1, 0}, []int32{0, 1, 1, 1, 2},
			[]string{"a/ams", "b/?id", "b/ams", "b/x"}},
		// The joined keys "b\x00c\x00x", "b\x00x", "b\x00a" sort as
		// b\x00a < b\x00c\x00x < b\x00x and split at their first NUL.
		{"NUL in a group", []string{"b\x00c", "b"}, []string{"x", "a"},
			[]int32{0, 1, 1}, []int32{0, 0, 1},
			[]string{"b/a", "b/c\x00x", "b/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newSiteCells(tc.groups, tc.groupKeys, tc.places, tc.placeKeys)
			var got []string
			for _, id := range c.order {
				got = append(got, c.groups[c.group[id]]+"/"+c.sites[c.site[id]])
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
			for i := range tc.groups { // every input is in the cell of its pair
				cell := c.ids[i]
				if c.groups[c.group[cell]]+"\x00"+c.sites[c.site[cell]] != tc.groupKeys[tc.groups[i]]+"\x00"+tc.placeKeys[tc.places[i]] {
					t.Errorf("input %d in cell %d of another pair", i, cell)
				}
			}
		})
	}
}
