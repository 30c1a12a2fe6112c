package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the Sentinels of StartSentinel monitor.
const SentinelMaster = "otplogin"

// Sentinel is a Sentinel group owned by one test: a master, its replica,
// and three Sentinels with a quorum of two.
type Sentinel struct {
	Master, Replica *Server // as started; a failover swaps the roles
	Sentinels       []*Server
}

// StartSentinel starts the group and waits until every Sentinel knows the
// replica and the other two Sentinels, so that a failover can happen. The
// Sentinels declare the master down after half a second without replies.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	g := &Sentinel{Master: Start(t)}
	g.Replica = StartWith(t, Config{Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(g.Master.Port())}})
	conf := fmt.Sprintf(`sentinel monitor %[1]s 127.0.0.1 %[2]d 2
sentinel down-after-milliseconds %[1]s 500
sentinel failover-timeout %[1]s 5000
sentinel parallel-syncs %[1]s 1
`, SentinelMaster, g.Master.Port())
	for range 3 {
		g.Sentinels = append(g.Sentinels, StartWith(t, Config{Conf: conf, Sentinel: true}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replica := redis.NewClient(&redis.Options{Addr: g.Replica.Addr()})
	defer replica.Close()
	if err := poll(ctx, func() error {
		info, err := replica.Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = fmt.Errorf("replica not in sync:\n%s", info)
		}
		return err
	}); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	for _, s := range g.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		err := poll(ctx, func() error {
			m, err := sc.Master(ctx, SentinelMaster).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel sees %s replicas and %s other sentinels", m["num-slaves"], m["num-other-sentinels"])
			}
			return nil
		})
		sc.Close()
		if err != nil {
			t.Fatalf("redistest: sentinel %s not ready: %v", s.Addr(), err)
		}
	}
	return g
}

// URL names the group in go-redis's form: the first Sentinel, every other
// as an addr parameter, and master_name.
func (g *Sentinel) URL() string {
	u := "redis://" + g.Sentinels[0].Addr() + "/0?master_name=" + SentinelMaster
	for _, s := range g.Sentinels[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}

// MasterAddr is the master's address as the first Sentinel that answers
// reports it.
func (g *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range g.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		hp, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
		sc.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel names the master: %w", last)
}

// Failover kills the master with SIGKILL, as a crash would, and waits until
// every Sentinel names the replica as master and it accepts writes. It
// returns how long that took.
func (g *Sentinel) Failover(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	g.Master.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	promoted := redis.NewClient(&redis.Options{Addr: g.Replica.Addr()})
	defer promoted.Close()
	err := poll(ctx, func() error {
		for _, s := range g.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
			hp, err := sc.GetMasterAddrByName(ctx, SentinelMaster).Result()
			sc.Close()
			if err != nil {
				return err
			}
			if a := net.JoinHostPort(hp[0], hp[1]); a != g.Replica.Addr() {
				return fmt.Errorf("sentinel %s names %s as master", s.Addr(), a)
			}
		}
		info, err := promoted.Info(ctx, "replication").Result()
		if err == nil && !strings.Contains(info, "role:master") {
			err = fmt.Errorf("the replica is not master yet:\n%s", info)
		}
		return err
	})
	if err != nil {
		t.Fatalf("redistest: failover: %v", err)
	}
	g.Master, g.Replica = g.Replica, g.Master
	return time.Since(start)
}
