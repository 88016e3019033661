//go:build tools

// Package tools pins the etcd server that scripts/dev-cluster builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
