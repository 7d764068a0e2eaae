package measure

import "testing"

func TestIsAdhocID(t *testing.T) {
	for id, want := range map[string]bool{
		AdhocID("od-0123456789abcdef", KindPing, 4): true,
		"adhoc/od-1/trace/6":                        true,
		"adhoc/ping/4":                              false, // a scheduled measurement of a target named "adhoc"
		"adhoc/ping-2/4":                            false,
		"k-root/ping/4":                             false,
		"adhoc/od-1/ping/4/x":                       false,
		"xadhoc/od-1/ping/4":                        false,
	} {
		if got := IsAdhocID(id); got != want {
			t.Errorf("IsAdhocID(%q) = %v, want %v", id, got, want)
		}
	}
}
