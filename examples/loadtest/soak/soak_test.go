package main

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestSoak runs the soak for a few seconds, as CI can afford, with the
// default acceptance. Under -race the banking example is built with the
// race detector too, so CI also looks for races under concurrent load.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak builds and loads the banking example for about 10 s")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	cfg := defaults()
	cfg.duration, cfg.warmup = 5*time.Second, time.Second
	cfg.rate = 200
	cfg.race = raceEnabled
	rep, err := soak(t.Context(), cfg, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.markdown())
	for _, f := range rep.failures {
		t.Error(f)
	}
	// The report must have seen what it judges.
	if n := rep.run.total(); n < 500 {
		t.Errorf("%d requests in %v at %g/s", n, cfg.duration, cfg.rate)
	}
	if rep.idleStart.goroutines <= 0 || rep.trend[0].rss <= 0 {
		t.Errorf("no goroutine count (%d) or RSS (%d) read", rep.idleStart.goroutines, rep.trend[0].rss)
	}
	if rep.logs.lines == 0 {
		t.Error("no access log read from banking")
	}
}
