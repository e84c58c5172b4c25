//go:build !demo

package main

import "log/slog"

// startDemo is nil in the production build: it links no demo cluster
// (franz-go's kfake and kgo), and -embedded is refused at start. See
// demo.go.
var startDemo func(log *slog.Logger) (embedded, error)
