// Package hclogadapter lets raft and memberlist, which log through hclog
// and the standard logger, write to a log/slog logger.
//
// On the way it makes their logs fit for an operator: warnings that every
// healthy start or catch-up produces are demoted (see demote), and a
// warning or error that repeats for one peer (raft retries a dead
// follower several times a second, for as long as it is down) is logged
// once a minute with the count of the ones left out (see limiter).
package hclogadapter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Logger is an hclog.Logger over slog. raft's key/value arguments are
// passed straight on: hclog and slog use the same alternating key, value
// convention.
type Logger struct {
	l       *slog.Logger
	name    string
	implied []any
	level   *slog.LevelVar
	limit   *limiter // shared by the loggers derived by With and Named
}

var _ hclog.Logger = (*Logger)(nil)

// New returns an hclog.Logger that writes to l at level and above, tagging
// records with subsystem=name.
func New(l *slog.Logger, name string, level slog.Leveler) *Logger {
	lv := new(slog.LevelVar)
	lv.Set(level.Level())
	return &Logger{l: l, name: name, level: lv, limit: newLimiter(RepeatWindow, time.Now)}
}

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func toHCLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func (a *Logger) enabled(l slog.Level) bool {
	return l >= a.level.Level() && a.l.Enabled(context.Background(), l)
}

// Log implements hclog.Logger.
func (a *Logger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := demote(toSlogLevel(level), msg, args)
	if !a.enabled(lv) {
		return
	}
	var repeats string
	if lv >= slog.LevelWarn {
		ok, dropped, over := a.limit.admit(repeatKey(a.name, msg, args))
		if !ok {
			return
		}
		if dropped > 0 {
			repeats = fmt.Sprintf("%d more in the last %v", dropped, over.Round(time.Second))
		}
	}
	attrs := make([]any, 0, 4+len(a.implied)+len(args))
	if a.name != "" {
		attrs = append(attrs, "subsystem", a.name)
	}
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
	if repeats != "" {
		attrs = append(attrs, "repeats", repeats)
	}
	a.l.Log(context.Background(), lv, msg, attrs...)
}

// Trace implements hclog.Logger.
func (a *Logger) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (a *Logger) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (a *Logger) Info(msg string, args ...any) { a.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (a *Logger) Warn(msg string, args ...any) { a.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (a *Logger) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

// IsTrace implements hclog.Logger.
func (a *Logger) IsTrace() bool { return a.enabled(toSlogLevel(hclog.Trace)) }

// IsDebug implements hclog.Logger.
func (a *Logger) IsDebug() bool { return a.enabled(slog.LevelDebug) }

// IsInfo implements hclog.Logger.
func (a *Logger) IsInfo() bool { return a.enabled(slog.LevelInfo) }

// IsWarn implements hclog.Logger.
func (a *Logger) IsWarn() bool { return a.enabled(slog.LevelWarn) }

// IsError implements hclog.Logger.
func (a *Logger) IsError() bool { return a.enabled(slog.LevelError) }

// ImpliedArgs implements hclog.Logger.
func (a *Logger) ImpliedArgs() []any { return a.implied }

// With implements hclog.Logger.
func (a *Logger) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

// Name implements hclog.Logger.
func (a *Logger) Name() string { return a.name }

// Named implements hclog.Logger.
func (a *Logger) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

// ResetNamed implements hclog.Logger.
func (a *Logger) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel implements hclog.Logger. The level is shared with loggers derived
// by With and Named, as in hclog.
func (a *Logger) SetLevel(level hclog.Level) {
	if level == hclog.NoLevel {
		return
	}
	if level == hclog.Off {
		a.level.Set(slog.LevelError + 100)
		return
	}
	a.level.Set(toSlogLevel(level))
}

// GetLevel implements hclog.Logger.
func (a *Logger) GetLevel() hclog.Level { return toHCLevel(a.level.Level()) }

// StandardLogger implements hclog.Logger.
func (a *Logger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger. Lines are logged at the level
// named by a "[DEBUG]"-style prefix, which is what libraries built on the
// standard logger (memberlist) write, and at INFO otherwise.
func (a *Logger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{a}
}

type stdWriter struct{ a *Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level, msg := inferLevel(strings.TrimSpace(string(line)))
		if w.a.name != "" {
			msg = strings.TrimPrefix(msg, w.a.name+": ")
		}
		w.a.Log(level, msg)
	}
	return len(p), nil
}

func inferLevel(line string) (hclog.Level, string) {
	prefixes := []struct {
		p string
		l hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
	}
	for _, x := range prefixes {
		if rest, ok := strings.CutPrefix(line, x.p); ok {
			return x.l, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, line
}
