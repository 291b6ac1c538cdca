package gateway

import "os"

// GATEKIT_TEST_SERVER=lean runs every Server of the package's tests with
// LeanHTTP1.
func init() { testLeanHTTP1 = os.Getenv("GATEKIT_TEST_SERVER") == "lean" }
