package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// backendMode is what a backend's port does now.
type backendMode string

const (
	modeServing   backendMode = "serving"   // a grpc-go server
	modeStopped   backendMode = "stopped"   // nothing listens: connections are refused
	modeBlackhole backendMode = "blackhole" // accepts TCP, reads and never writes a byte
)

// backend is one grpc.testing.TestService server on a fixed host:port. Its name is both the
// server_id and the hostname it reports (so "hostname=b1 ..." rpc-behavior targets it).
type backend struct {
	testpb.UnimplementedTestServiceServer
	name string
	addr string

	mu          sync.Mutex // guards everything below
	mode        backendMode
	grpc        *grpc.Server
	health      *health.Server
	notServing  bool
	hole        net.Listener
	holeConns   []net.Conn
	unary       int64
	empty       int64
	inflight    int64
	maxInflight int64
	accepted    int64 // blackhole connections accepted
}

func (b *backend) serve() error {
	lis, err := listenRetry(b.addr)
	if err != nil {
		return err
	}
	b.addr = lis.Addr().String()
	g := grpc.NewServer()
	testpb.RegisterTestServiceServer(g, b)
	hs := health.NewServer()
	if b.notServing {
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(g, hs)
	b.grpc, b.health, b.mode = g, hs, modeServing
	go func() {
		if err := g.Serve(lis); err != nil {
			log.Printf("backend %s: %v", b.name, err)
		}
	}()
	return nil
}

// halt ends whatever the port does now (closing every connection at once); callers hold b.mu.
func (b *backend) halt() {
	if b.grpc != nil {
		b.grpc.Stop()
		b.grpc, b.health = nil, nil
	}
	if b.hole != nil {
		_ = b.hole.Close()
		for _, c := range b.holeConns {
			_ = c.Close()
		}
		b.hole, b.holeConns = nil, nil
	}
	b.mode = modeStopped
}

func (b *backend) setMode(mode backendMode) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode == mode {
		return nil
	}
	b.halt()
	switch mode {
	case modeStopped:
		return nil
	case modeServing:
		return b.serve()
	case modeBlackhole:
		lis, err := listenRetry(b.addr)
		if err != nil {
			return err
		}
		b.hole, b.mode = lis, modeBlackhole
		go b.swallow(lis)
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// swallow accepts connections on lis and reads them to the end without ever answering.
func (b *backend) swallow(lis net.Listener) {
	for {
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.hole != lis {
			b.mu.Unlock()
			_ = conn.Close()
			return
		}
		b.holeConns = append(b.holeConns, conn)
		b.accepted++
		b.mu.Unlock()
		go func() { _, _ = io.Copy(io.Discard, conn) }()
	}
}

func (b *backend) setServingStatus(serving bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notServing = !serving
	if b.health != nil {
		st := healthpb.HealthCheckResponse_SERVING
		if !serving {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		b.health.SetServingStatus("", st)
	}
	return nil
}

func (b *backend) begin(unary bool) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if unary {
		b.unary++
	} else {
		b.empty++
	}
	b.inflight++
	if b.inflight > b.maxInflight {
		b.maxInflight = b.inflight
	}
	return func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}
}

func (b *backend) stats() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return map[string]any{
		"address":            b.addr,
		"mode":               string(b.mode),
		"serving_status":     map[bool]string{false: "SERVING", true: "NOT_SERVING"}[b.notServing],
		"unary":              b.unary,
		"empty":              b.empty,
		"rpcs":               b.unary + b.empty,
		"in_flight":          b.inflight,
		"max_in_flight":      b.maxInflight,
		"blackhole_accepted": b.accepted,
	}
}

func (b *backend) resetCounts() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unary, b.empty, b.accepted = 0, 0, 0
	b.maxInflight = b.inflight
}

// applyBehavior carries out the interop rpc-behavior metadata (grpc/grpc
// doc/xds-test-descriptions.md, "Server"): comma-separated behaviors, each value optionally
// prefixed by "hostname=NAME " to apply only on that host; sleep-N (seconds), keep-open,
// error-code-N, succeed-on-retry-attempt-N (succeed when grpc-previous-rpc-attempts is N).
func (b *backend) applyBehavior(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	attempt := -1
	if v := md.Get("grpc-previous-rpc-attempts"); len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil {
			attempt = n
		}
	}
	for _, header := range md.Get("rpc-behavior") {
		value := header
		if strings.HasPrefix(value, "hostname=") {
			host, rest, _ := strings.Cut(strings.TrimPrefix(value, "hostname="), " ")
			if host != b.name {
				continue
			}
			value = rest
		}
		for _, behavior := range strings.Split(value, ",") {
			behavior = strings.TrimSpace(behavior)
			switch {
			case behavior == "":
			case behavior == "keep-open":
				<-ctx.Done()
				return status.FromContextError(ctx.Err()).Err()
			case strings.HasPrefix(behavior, "sleep-"):
				secs, err := strconv.Atoi(strings.TrimPrefix(behavior, "sleep-"))
				if err != nil {
					return status.Errorf(codes.InvalidArgument, "invalid rpc-behavior %q", behavior)
				}
				select {
				case <-time.After(time.Duration(secs) * time.Second):
				case <-ctx.Done():
					return status.FromContextError(ctx.Err()).Err()
				}
			case strings.HasPrefix(behavior, "error-code-"):
				code, err := strconv.Atoi(strings.TrimPrefix(behavior, "error-code-"))
				if err != nil {
					return status.Errorf(codes.InvalidArgument, "invalid rpc-behavior %q", behavior)
				}
				return status.Errorf(codes.Code(code), "%s: failed as rpc-behavior %q asks", b.name, header)
			case strings.HasPrefix(behavior, "succeed-on-retry-attempt-"):
				n, err := strconv.Atoi(strings.TrimPrefix(behavior, "succeed-on-retry-attempt-"))
				if err != nil {
					return status.Errorf(codes.InvalidArgument, "invalid rpc-behavior %q", behavior)
				}
				if attempt == n {
					return nil
				}
			default:
				return status.Errorf(codes.InvalidArgument, "unknown rpc-behavior %q", behavior)
			}
		}
	}
	return nil
}

func (b *backend) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	defer b.begin(false)()
	_ = grpc.SetHeader(ctx, metadata.Pairs("hostname", b.name))
	if err := b.applyBehavior(ctx); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (b *backend) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	defer b.begin(true)()
	_ = grpc.SetHeader(ctx, metadata.Pairs("hostname", b.name))
	if err := b.applyBehavior(ctx); err != nil {
		return nil, err
	}
	resp := &testpb.SimpleResponse{ServerId: b.name, Hostname: b.name}
	if in.GetResponseSize() > 0 {
		resp.Payload = &testpb.Payload{Body: make([]byte, in.GetResponseSize())}
	}
	return resp, nil
}

// backendSet holds the backends by name.
type backendSet struct {
	mu     sync.Mutex
	byName map[string]*backend
}

func newBackendSet() *backendSet { return &backendSet{byName: map[string]*backend{}} }

func (s *backendSet) add(name, host string) (*backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byName[name]; ok {
		return nil, fmt.Errorf("backend %q exists", name)
	}
	b := &backend{name: name, addr: net.JoinHostPort(host, "0")}
	b.mu.Lock()
	err := b.serve()
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.byName[name] = b
	return b, nil
}

func (s *backendSet) get(name string) (*backend, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byName[name]
	return b, ok
}

func (s *backendSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *backendSet) address(name string) (string, bool) {
	b, ok := s.get(name)
	if !ok {
		return "", false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr, true
}

func (s *backendSet) addresses() map[string]string {
	out := map[string]string{}
	for _, n := range s.names() {
		out[n], _ = s.address(n)
	}
	return out
}

func (s *backendSet) stopAll() {
	for _, n := range s.names() {
		b, _ := s.get(n)
		b.mu.Lock()
		b.halt()
		b.mu.Unlock()
	}
}
