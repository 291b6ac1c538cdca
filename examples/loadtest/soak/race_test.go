//go:build race

package main

// raceEnabled is whether the test runs under the race detector.
const raceEnabled = true
