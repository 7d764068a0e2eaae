package api

import (
	"github.com/anycatch/anycatch/measure"
)

// specJSON accepts a measure.Spec strictly.
type specJSON measure.Spec

func (s specJSON) Spec() measure.Spec { return measure.Spec(s) }
