package e2e

import (
	"context"
	"testing"

	"github.com/anycatch/anycatch/lab/labstack"
)

// screenshotMap saves a browser screenshot of the lab's catchment map.
func screenshotMap(ctx context.Context, t *testing.T, s *labstack.Stack) {
	t.Helper()
	t.Log("TODO(lead): screenshot once the web UI lands")
}
