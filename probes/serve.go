package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bulkhead-k8s/bulkhead/probes/wire"
)

// serveConfig says where serve listens. An empty address disables that
// protocol.
type serveConfig struct {
	TCP, UDP, SCTP string
	// LogRequests logs every answered request; off by default because probes
	// are frequent and the logs are for events.
	LogRequests bool
	// Token, when set, makes serve answer only HTTP requests that carry it
	// in wire.TokenHeader (and /healthz only from loopback, for the
	// readiness probe); any other request gets its connection closed
	// without a byte. UDP and SCTP are off then: they cannot ask for it.
	// bulkhead serves so behind a NodePort, where strangers may knock.
	Token string
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		TCP:  ":" + strconv.Itoa(wire.PortTCP),
		UDP:  ":" + strconv.Itoa(wire.PortUDP),
		SCTP: ":" + strconv.Itoa(wire.PortSCTP),
	}
}

func runServe(ctx context.Context, e *env, args []string) int {
	cfg := defaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&cfg.TCP, "tcp", cfg.TCP, "HTTP listen address (empty disables)")
	fs.StringVar(&cfg.UDP, "udp", cfg.UDP, "UDP listen address (empty disables)")
	fs.StringVar(&cfg.SCTP, "sctp", cfg.SCTP, "SCTP listen address (empty disables)")
	fs.BoolVar(&cfg.LogRequests, "log-requests", false, "log every answered request")
	fs.StringVar(&cfg.Token, "token", "", "answer only HTTP requests carrying this token in the "+wire.TokenHeader+" header, nothing else (UDP and SCTP off)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(e.stderr, "probe serve: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}

	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	id := e.identity()
	s, err := startServers(cfg, id, log)
	if err != nil {
		log.Error("cannot serve", "err", err)
		return exitFail
	}
	log.Info("serving", "tcp", addrString(s.tcpAddr()), "udp", addrString(s.udpAddr()), "sctp", addrString(s.sctpAddr()),
		"pod", id.Pod, "namespace", id.Namespace, "node", id.Node, "ip", id.IP)

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
	case err := <-s.failed:
		// A server that stopped leaves the pod useless: exit so the kubelet
		// restarts it.
		log.Error("server failed", "err", err)
		code = exitFail
	}
	s.close()
	log.Info("stopped")
	return code
}

// servers are serve's listeners, started and stopped together.
type servers struct {
	log      *slog.Logger
	answer   []byte // the Identity JSON every protocol answers with
	logEvery bool
	token    string // see serveConfig.Token

	tcp  net.Listener
	http *http.Server
	udp  net.PacketConn
	sctp *sctpListener // nil if disabled or the kernel has no SCTP

	// failed receives the first error that stops a server.
	failed    chan error
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// startServers binds every configured listener and starts serving. Failing to
// bind TCP or UDP is an error; SCTP being unavailable is only logged, because
// many kernels lack it and TCP/UDP probes are still worth running.
func startServers(cfg serveConfig, id wire.Identity, log *slog.Logger) (_ *servers, err error) {
	answer, err := json.Marshal(id)
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	if cfg.Token != "" {
		cfg.UDP, cfg.SCTP = "", ""
	}
	s := &servers{
		log:      log,
		answer:   append(answer, '\n'),
		logEvery: cfg.LogRequests,
		token:    cfg.Token,
		failed:   make(chan error, 3),
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	if cfg.TCP != "" {
		if s.tcp, err = net.Listen("tcp", cfg.TCP); err != nil {
			return nil, fmt.Errorf("listen tcp %s: %w", cfg.TCP, err)
		}
	}
	if cfg.UDP != "" {
		if s.udp, err = net.ListenPacket("udp", cfg.UDP); err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", cfg.UDP, err)
		}
	}
	if cfg.SCTP != "" {
		if s.sctp, err = listenSCTP(cfg.SCTP); err != nil {
			log.Warn("sctp unavailable; serving tcp and udp only", "addr", cfg.SCTP, "err", err)
			s.sctp, err = nil, nil
		}
	}

	if s.tcp != nil {
		s.http = &http.Server{
			Handler:           s.httpHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		// Every probe is a fresh connection; keeping idle ones open only
		// holds resources.
		s.http.SetKeepAlivesEnabled(false)
		s.goServe(func() error {
			if err := s.http.Serve(s.tcp); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
	}
	if s.udp != nil {
		s.goServe(s.serveUDP)
	}
	if s.sctp != nil {
		s.goServe(func() error { return s.sctp.serve(s.answer, s.logRequest) })
	}
	return s, nil
}

func (s *servers) goServe(serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil {
			s.failed <- err
		}
	}()
}

func (s *servers) httpHandler() http.Handler {
	if s.token != "" {
		return s.tokenHandler()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	// "/" matches every other path: any path answers with the identity.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(s.answer)
		s.logRequest("tcp", r.RemoteAddr)
	})
	return mux
}

// tokenHandler answers only what carries the token (and the local health
// check); everyone else gets the connection closed with no answer at all,
// not even a status line.
func (s *servers) tokenHandler() http.Handler {
	want := []byte(s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && fromLoopback(r):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "ok")
		case subtle.ConstantTimeCompare([]byte(r.Header.Get(wire.TokenHeader)), want) == 1:
			w.Header().Set("Content-Type", "application/json")
			w.Write(s.answer)
			s.logRequest("tcp", r.RemoteAddr)
		default:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler) // closes the connection without a response
		}
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *servers) serveUDP() error {
	buf := make([]byte, 2048)
	for {
		_, from, err := s.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Transient (e.g. a truncated datagram); keep serving.
			s.log.Warn("udp read", "err", err)
			continue
		}
		if _, err := s.udp.WriteTo(s.answer, from); err != nil {
			s.log.Warn("udp answer", "to", from.String(), "err", err)
			continue
		}
		s.logRequest("udp", from.String())
	}
}

func (s *servers) logRequest(proto, from string) {
	if s.logEvery {
		s.log.Info("answered", "proto", proto, "from", from)
	}
}

// close stops every server promptly: pods get one second to terminate.
func (s *servers) close() {
	s.closeOnce.Do(func() {
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			if err := s.http.Shutdown(ctx); err != nil {
				s.http.Close()
			}
			cancel()
		} else if s.tcp != nil {
			s.tcp.Close()
		}
		if s.udp != nil {
			s.udp.Close()
		}
		if s.sctp != nil {
			s.sctp.close()
		}
		s.wg.Wait()
	})
}

func (s *servers) tcpAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

func (s *servers) udpAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

func (s *servers) sctpAddr() net.Addr {
	if s.sctp == nil {
		return nil
	}
	return s.sctp.addr
}

func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}
