package reactor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// logQueueLen is how many log records of the event loops wait for the
// writer goroutine before more are dropped.
const logQueueLen = 1024

// logQueue carries the log records of the event loops to Config.Logger's
// handler on a goroutine of its own, so that no handler, however slow, can
// block a loop: a record that finds the queue full is dropped and counted,
// and the writer reports the count once it catches up.
type logQueue struct {
	records chan queuedRecord
	dropped atomic.Uint64
	report  *slog.Logger // where drops are reported

	stop chan struct{}
	done sync.WaitGroup
}

type queuedRecord struct {
	h slog.Handler
	r slog.Record
}

func newLogQueue(report *slog.Logger) *logQueue {
	return &logQueue{records: make(chan queuedRecord, logQueueLen), report: report, stop: make(chan struct{})}
}

// start runs the writer goroutine until stop.
func (q *logQueue) start() {
	q.done.Go(q.write)
}

// stopAndFlush writes what is queued and stops the writer. A record
// logged after it waits in the queue, or is dropped, and is never written.
func (q *logQueue) stopAndFlush() {
	close(q.stop)
	q.done.Wait()
}

func (q *logQueue) write() {
	var reported uint64
	handle := func(e queuedRecord) {
		_ = e.h.Handle(context.Background(), e.r)
		if d := q.dropped.Load(); d != reported && len(q.records) == 0 {
			q.report.Warn("log lines of the event loops dropped: the log handler fell behind", "dropped", d-reported)
			reported = d
		}
	}
	for {
		select {
		case e := <-q.records:
			handle(e)
		case <-q.stop:
			for {
				select {
				case e := <-q.records:
					handle(e)
				default:
					if d := q.dropped.Load(); d != reported {
						q.report.Warn("log lines of the event loops dropped: the log handler fell behind", "dropped", d-reported)
					}
					return
				}
			}
		}
	}
}

// loopHandler is the slog.Handler of the loggers used on the event loops:
// Handle queues the record for the writer goroutine and never blocks.
type loopHandler struct {
	next slog.Handler
	q    *logQueue
}

// Enabled reports whether the next handler takes records of level.
func (h loopHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle queues r, or drops it when the queue is full.
func (h loopHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.q.records <- queuedRecord{h.next, r.Clone()}:
	default:
		h.q.dropped.Add(1)
	}
	return nil
}

// WithAttrs returns a loopHandler over the next handler with attrs.
func (h loopHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return loopHandler{h.next.WithAttrs(attrs), h.q}
}

// WithGroup returns a loopHandler over the next handler with the group.
func (h loopHandler) WithGroup(name string) slog.Handler {
	return loopHandler{h.next.WithGroup(name), h.q}
}

// gnetLogger sends gnet's log lines, which come from its loops, to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Infof(format string, args ...any)  { g.l.Debug(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.l.Warn(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Errorf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }
func (g gnetLogger) Fatalf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }
