//go:build race

package validate_test

// raceEnabled is set under -race, whose sync.Pool drops items at random
// and so makes allocation counts noisy.
const raceEnabled = true
