package transform

import "github.com/gatekit/gatekit/gateway"

const hexDigits = "0123456789abcdef"

// appendJSONString appends s to b as a JSON string (gateway.AppendJSONString).
func appendJSONString(b []byte, s string) []byte { return gateway.AppendJSONString(b, s) }
