// Package compat holds the franz-go (Go) Kafka-compatibility tests for the
// Sluice broker. Everything lives in _test.go files; run ./run or
// `go test -count=1 -v ./...` (see README.md).
package compat
