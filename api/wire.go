package api

import (
	"net/netip"

	"github.com/anycatch/anycatch/measure"
)

// specJSON accepts a measure.Spec strictly.
type specJSON measure.Spec

func (s specJSON) Spec() measure.Spec { return measure.Spec(s) }

func isAddr(s string, af int) bool {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return false
	}
	if af == 4 {
		return a.Is4()
	}
	return a.Is6() && !a.Is4In6()
}
