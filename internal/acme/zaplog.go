package acme

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logKeyLogger is the attribute that names the part of CertMagic a record comes from ("obtain",
// "renew", "maintenance"…), from zap's logger name.
const logKeyLogger = "logger"

// zapLogger returns a zap logger, as CertMagic takes, that writes every record to h: the level
// mapped to slog's (debug, info, warn and error keep their meaning; zap's panic and fatal levels,
// which CertMagic does not use, become levels above error), the fields to attributes in the order
// given. The logger adds no caller or stack trace of its own.
func zapLogger(h slog.Handler) *zap.Logger {
	return zap.New(&slogCore{h: h})
}

// slogCore is a zapcore.Core that writes to a slog.Handler.
type slogCore struct {
	h slog.Handler
}

var _ zapcore.Core = (*slogCore)(nil)

// slogLevel maps a zap level to slog's: zap numbers its levels -1 (debug) to 5 (fatal) one apart,
// slog -4 (debug) to 8 (error) four apart.
func slogLevel(l zapcore.Level) slog.Level { return slog.Level(int(l) * 4) }

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return &slogCore{h: c.h.WithAttrs(attrs(fields))}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	// CertMagic names its ACME client's logger ".acme_client" when its own logger has no name.
	if name := strings.TrimPrefix(e.LoggerName, "."); name != "" {
		r.AddAttrs(slog.String(logKeyLogger, name))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }

// attrs converts zap fields to slog attributes, in order. Each field is encoded on its own with
// zap's map encoder, which gives its value as a Go value (an error field gives its message under
// the field's key, and its verbose form under KEYVerbose when that differs).
func attrs(fields []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		if f.Type == zapcore.SkipType {
			continue
		}
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		if v, ok := enc.Fields[f.Key]; ok && len(enc.Fields) == 1 {
			out = append(out, slog.Any(f.Key, v))
			continue
		}
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, slog.Any(k, enc.Fields[k]))
		}
	}
	return out
}
