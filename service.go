package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"charm.land/log/v2"
	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/otp/redisstore"
)

// codeService is the otp Service with the store it owns.
type codeService struct {
	*otp.Service
	store io.Closer // nil for the memory store
}

func (c *codeService) Close() error {
	err := c.Service.Close()
	if c.store != nil {
		err = errors.Join(err, c.store.Close())
	}
	return err
}

// openService builds the code service over the configured store: memory by
// default, Redis when OTPLOGIN_REDIS_URL is set (then replicas must share
// OTPLOGIN_SECRET, the key codes are hashed with).
// tune, when not nil, adjusts the service configuration (serve's flags).
func openService(ctx context.Context, s *settings, m *mailer, logger *log.Logger, tune func(*otp.Config)) (*codeService, error) {
	redisURL := s.get("OTPLOGIN_REDIS_URL")
	key, err := secretKey(s, redisURL != "")
	if err != nil {
		return nil, err
	}
	cs := &codeService{}
	var store otp.Store = otp.NewMemoryStore()
	if redisURL != "" {
		// go-redis logs through a process-wide logger that writes to stderr,
		// under the local UI; send it to the operator log instead.
		redis.SetLogger(redisLog{logger})
		rs, err := redisstore.Open(ctx, redisURL, redisstore.Options{Secret: key})
		if err != nil {
			if errors.Is(err, otp.ErrUnavailable) {
				// Not a bad setting (exit 1), but say which one to check.
				return nil, fmt.Errorf("%s: %w", s.label("OTPLOGIN_REDIS_URL"), err)
			}
			return nil, s.explain(fmt.Errorf("OTPLOGIN_REDIS_URL: %w", err))
		}
		store, cs.store = rs, rs
		logger.Info("codes and limits are shared through Redis")
	}
	// charm log is an slog.Handler, so otp's warnings land in the same log.
	cfg := otp.Config{Key: key, Logger: slog.New(logger)}
	if tune != nil {
		tune(&cfg)
	}
	if cs.Service, err = otp.New(cfg, store, m.sender); err != nil {
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
