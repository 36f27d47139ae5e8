//go:build tools

// Package tools pins the etcd server command (package main at the module root of
// go.etcd.io/etcd/server/v3), so `go mod tidy` keeps its dependencies in go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
