module github.com/gatekit/gatekit

go 1.26
