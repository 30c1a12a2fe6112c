package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"charm.land/log/v2"
	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/internal/metrics"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/redisstore"
)

// codeService is the otp Service with the store it owns.
type codeService struct {
	*otp.Service
	store    io.Closer // nil for the memory store
	rawStore otp.Store // the store itself, for its readiness
}

func (c *codeService) Close() error {
	err := c.Service.Close()
	if c.store != nil {
		err = errors.Join(err, c.store.Close())
	}
	return err
}

// openService builds the code service over the configured store: memory by
// default, Redis when --redis-url is set (then replicas share the secret
// the codes are hashed with). With mx, the store and the sender are timed
// and counted. It prints nothing.
func openService(ctx context.Context, c *Config, m *mailer, logger *log.Logger, mx *metrics.Metrics) (*codeService, error) {
	cs := &codeService{}
	var store otp.Store = otp.NewMemoryStore()
	if c.RedisURL != "" {
		// go-redis logs through a process-wide logger that writes to stderr,
		// under the local UI; send it to the operator log instead.
		redis.SetLogger(redisLog{logger})
		rs, err := redisstore.Open(ctx, c.RedisURL, redisstore.Options{
			Secret:         c.OTP.Key,
			AllowCleartext: c.RedisAllowCleartext,
			CAFile:         c.RedisCAFile,
			Logger:         slog.New(logger),
		})
		switch {
		case errors.Is(err, otp.ErrUnavailable):
			// Not a bad setting (exit 1), but say which one to check.
			return nil, fmt.Errorf("%s: %w", redisURL.label(), err)
		case errors.Is(err, redisstore.ErrCAFile):
			return nil, redisCAFile.fail(err)
		case errors.Is(err, redisstore.ErrCleartext):
			return nil, redisURL.fail(fmt.Errorf("%w; %s allows it", err, redisAllowCleartext.label()))
		case err != nil:
			return nil, redisURL.fail(err)
		}
		store, cs.store = rs, rs
	}
	cs.rawStore = store
	var sender otp.Sender = m.sender
	if mx != nil {
		store, sender = mx.Store(store), mx.Sender(sender)
	}
	// charm log is an slog.Handler, so otp's warnings land in the same log.
	cfg := c.OTP
	cfg.Logger = slog.New(logger)
	var err error
	if cs.Service, err = otp.New(cfg, store, sender); err != nil {
		if cs.store != nil {
			cs.store.Close()
		}
		return nil, configError{err}
	}
	return cs, nil
}

// redisLog adapts the operator log to go-redis's logger.
type redisLog struct{ l *log.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn("redis: " + fmt.Sprintf(format, v...))
}
