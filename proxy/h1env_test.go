package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/gatekit/gatekit/proxy/h1"
)

// h1FromEnv runs a test on proxy/h1's transport when
// GATEKIT_TEST_TRANSPORT=h1: wherever the upstream would build its own
// transport and every target is plain http, cfg gets an h1 Transport,
// closed when the test ends.
func h1FromEnv(t testing.TB, cfg HTTPConfig) HTTPConfig {
	if os.Getenv("GATEKIT_TEST_TRANSPORT") != "h1" || cfg.Transport != nil || len(cfg.Targets) == 0 {
		return cfg
	}
	for _, s := range cfg.Targets {
		if !strings.HasPrefix(s, "http://") {
			return cfg
		}
	}
	tr := h1.New(h1.Config{DialTimeout: cfg.DialTimeout})
	t.Cleanup(tr.CloseIdleConnections) // after the upstream's Close, registered later
	cfg.Transport = tr
	return cfg
}

// H1FromEnv is h1FromEnv for the package's external tests.
var H1FromEnv = h1FromEnv
