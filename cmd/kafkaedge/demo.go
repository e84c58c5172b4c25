//go:build demo

package main

import (
	"log/slog"

	"github.com/kafkaedge/kafkaedge/cmd/kafkaedge/internal/demo"
)

// startDemo starts the embedded demo cluster of -embedded.
//
// The demo cluster is franz-go's kfake and kgo: test code that has no place
// in the binary that runs in production. It is linked in only with the
// build tag "demo" (make run builds bin/kafkaedge-demo so), not through a
// command of its own, so that the demo build is this very command, with
// its flags, wiring and signals, plus -embedded; nodemo.go is the
// production build's side.
var startDemo = func(log *slog.Logger) (embedded, error) {
	d, err := demo.Start(log)
	if err != nil {
		return nil, err
	}
	return d, nil
}
