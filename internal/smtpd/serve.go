package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Conn is an accepted connection with its 1-based accept number.
type Conn struct {
	net.Conn
	ID int
	l  *listener
}

// Close closes the connection and forgets it.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// ConnID returns the accept number of c, looking through TLS, or 0.
func ConnID(c net.Conn) int {
	for c != nil {
		switch t := c.(type) {
		case *Conn:
			return t.ID
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return 0
		}
	}
	return 0
}

// listener counts and tracks connections so Close can end them all:
// go-smtp's Server.Close misses listeners Serve has not registered yet and
// does not wait for handlers.
type listener struct {
	net.Listener
	mu     sync.Mutex
	n      int
	conns  map[*Conn]struct{}
	closed bool
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		nc.Close()
		return nil, net.ErrClosed
	}
	l.n++
	c := &Conn{Conn: nc, ID: l.n, l: l}
	l.conns[c] = struct{}{}
	return c, nil
}

// closeAll stops accepting and closes every connection.
func (l *listener) closeAll() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.Listener.Close()
	l.closeConns()
}

func (l *listener) closeConns() {
	l.mu.Lock()
	conns := make([]*Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Running is a go-smtp server serving on a loopback port.
type Running struct {
	srv       *smtp.Server
	ln        *listener
	done      chan struct{}
	serveDone chan struct{}
	once      sync.Once
	closeErr  error
}

// Serve runs srv on 127.0.0.1 with a free port. With implicitTLS non-nil
// the listener speaks TLS from the first byte (smtps). srv must be fully
// configured: its fields must not change once it serves.
func Serve(srv *smtp.Server, implicitTLS *tls.Config) (*Running, error) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtpd: listen: %w", err)
	}
	ln := &listener{Listener: tl, conns: make(map[*Conn]struct{})}
	r := &Running{srv: srv, ln: ln, done: make(chan struct{}), serveDone: make(chan struct{})}
	var serveOn net.Listener = ln
	if implicitTLS != nil {
		serveOn = tls.NewListener(ln, implicitTLS)
	}
	go func() {
		defer close(r.serveDone)
		_ = srv.Serve(serveOn) // returns once the listener is closed
	}()
	return r, nil
}

// Addr is the listening address.
func (r *Running) Addr() *net.TCPAddr { return r.ln.Addr().(*net.TCPAddr) }

// Connections is the number of connections accepted so far.
func (r *Running) Connections() int {
	r.ln.mu.Lock()
	defer r.ln.mu.Unlock()
	return r.ln.n
}

// DropConns closes every open connection but keeps listening, as a server
// dropping idle clients does.
func (r *Running) DropConns() { r.ln.closeConns() }

// Done is closed when Close starts; handlers that block (test stalls)
// must give up when it is.
func (r *Running) Done() <-chan struct{} { return r.done }

// Close stops accepting, ends every connection and waits, up to a bound,
// for every handler to return. It is idempotent.
func (r *Running) Close() error {
	r.once.Do(func() {
		close(r.done)
		r.ln.closeAll()
		<-r.serveDone // no Serve goroutine can start a handler after this
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
			r.closeErr = fmt.Errorf("smtpd: shutdown: %w", err)
		}
	})
	return r.closeErr
}
