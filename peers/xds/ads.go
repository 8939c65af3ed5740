package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// requestEvent is one DiscoveryRequest as the ADS server received it.
type requestEvent struct {
	Seq           int64     `json:"seq"`
	Time          float64   `json:"time"` // Unix seconds
	StreamID      int64     `json:"stream_id"`
	TypeURL       string    `json:"type_url"`
	Type          string    `json:"type"` // LDS, RDS, CDS, EDS or the type URL
	VersionInfo   string    `json:"version_info"`
	ResponseNonce string    `json:"response_nonce"`
	ResourceNames []string  `json:"resource_names"`
	ErrorDetail   *errorOut `json:"error_detail"`
	NodeID        string    `json:"node_id"`
}

type errorOut struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

// responseEvent is one DiscoveryResponse the ADS server sent.
type responseEvent struct {
	Seq           int64    `json:"seq"`
	Time          float64  `json:"time"`
	StreamID      int64    `json:"stream_id"`
	TypeURL       string   `json:"type_url"`
	Type          string   `json:"type"`
	VersionInfo   string   `json:"version_info"`
	Nonce         string   `json:"nonce"`
	ResourceNames []string `json:"resource_names"`
}

// eventLog implements go-control-plane's server.Callbacks (embedding CallbackFuncs for the
// delta and REST hooks it leaves as no-ops) and records the SotW stream traffic.
type eventLog struct {
	server.CallbackFuncs
	mu        sync.Mutex
	seq       int64
	requests  []requestEvent
	responses []responseEvent
	opened    int
	closed    int
	active    map[int64]bool
	// sent[stream][type URL][nonce] = the version_info of that response.
	sent map[int64]map[string]map[string]string
	// nacked holds, for a NACK being processed, the version it rejected (see holdingCache).
	nacked map[*discovery.DiscoveryRequest]string
}

func newEventLog() *eventLog {
	return &eventLog{
		active: map[int64]bool{},
		sent:   map[int64]map[string]map[string]string{},
		nacked: map[*discovery.DiscoveryRequest]string{},
	}
}

// takeNacked returns the version req NACKs (if it is a NACK of a response of its stream).
func (e *eventLog) takeNacked(req *discovery.DiscoveryRequest) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.nacked[req]
	delete(e.nacked, req)
	return v, ok
}

var shortTypes = map[string]string{
	"type.googleapis.com/envoy.config.listener.v3.Listener":              "LDS",
	"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":       "RDS",
	"type.googleapis.com/envoy.config.cluster.v3.Cluster":                "CDS",
	"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS",
}

func shortType(url string) string {
	if s, ok := shortTypes[url]; ok {
		return s
	}
	return url
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (e *eventLog) OnStreamOpen(_ context.Context, id int64, _ string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opened++
	e.active[id] = true
	return nil
}

func (e *eventLog) OnStreamClosed(id int64, _ *core.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed++
	delete(e.active, id)
	delete(e.sent, id)
}

func (e *eventLog) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev := requestEvent{
		Seq:           e.seq,
		Time:          now(),
		StreamID:      id,
		TypeURL:       req.GetTypeUrl(),
		Type:          shortType(req.GetTypeUrl()),
		VersionInfo:   req.GetVersionInfo(),
		ResponseNonce: req.GetResponseNonce(),
		ResourceNames: append([]string{}, req.GetResourceNames()...),
		NodeID:        req.GetNode().GetId(),
	}
	if d := req.GetErrorDetail(); d != nil {
		ev.ErrorDetail = &errorOut{Code: d.GetCode(), Message: d.GetMessage()}
		log.Printf("stream %d: NACK of %s version %q: %s", id, ev.Type, ev.VersionInfo, d.GetMessage())
		if v, ok := e.sent[id][req.GetTypeUrl()][req.GetResponseNonce()]; ok {
			e.nacked[req] = v
		}
	}
	e.requests = append(e.requests, ev)
	return nil
}

func (e *eventLog) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	names := make([]string, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		names = append(names, resourceNameOfAny(r.GetTypeUrl(), r.GetValue()))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	byType := e.sent[id]
	if byType == nil {
		byType = map[string]map[string]string{}
		e.sent[id] = byType
	}
	if byType[resp.GetTypeUrl()] == nil {
		byType[resp.GetTypeUrl()] = map[string]string{}
	}
	byType[resp.GetTypeUrl()][resp.GetNonce()] = resp.GetVersionInfo()
	e.seq++
	e.responses = append(e.responses, responseEvent{
		Seq:           e.seq,
		Time:          now(),
		StreamID:      id,
		TypeURL:       resp.GetTypeUrl(),
		Type:          shortType(resp.GetTypeUrl()),
		VersionInfo:   resp.GetVersionInfo(),
		Nonce:         resp.GetNonce(),
		ResourceNames: names,
	})
}

func (e *eventLog) snapshot() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	active := make([]int64, 0, len(e.active))
	for id := range e.active {
		active = append(active, id)
	}
	return map[string]any{
		"requests":  append([]requestEvent{}, e.requests...),
		"responses": append([]responseEvent{}, e.responses...),
		"streams": map[string]any{
			"opened": e.opened,
			"closed": e.closed,
			"active": active,
		},
	}
}

// reset forgets the recorded requests and responses and the open/close counts; streams that are
// still open stay listed as active.
func (e *eventLog) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = nil
	e.responses = nil
	clear(e.nacked)
	e.opened = 0
	e.closed = 0
}

// management is the ADS server: one snapshot cache, one xDS server, and a grpc.Server that can be
// stopped and started again on the same port.
type management struct {
	ctx     context.Context
	cache   cache.SnapshotCache
	xds     server.Server
	nodeID  string
	addr    string
	mu      sync.Mutex // guards grpc, version, last
	grpc    *grpc.Server
	version int
}

type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(format string, args ...any) {
	log.Printf("go-control-plane: "+format, args...)
}
func (quietLogger) Errorf(format string, args ...any) {
	log.Printf("go-control-plane: "+format, args...)
}

// holdingCache is the snapshot cache with one change: a NACK does not get the version it
// rejected again. go-control-plane's cache answers any request whose version_info differs
// from the snapshot's, and a NACK carries the last version the client accepted (the xDS
// protocol, "ACK and NACK semantics"), so it would resend the rejected version at once, and
// the client would NACK it again, in a loop as fast as the round trip. Here a NACK waits, like
// an ACK of the rejected version, for the next snapshot.
type holdingCache struct {
	cache.SnapshotCache
	events *eventLog
}

func (c holdingCache) CreateWatch(req *cache.Request, sub cache.Subscription, out chan cache.Response) (func(), error) {
	if rejected, ok := c.events.takeNacked(req); ok {
		held := proto.Clone(req).(*discovery.DiscoveryRequest)
		held.VersionInfo = rejected
		return c.SnapshotCache.CreateWatch(held, sub, out)
	}
	return c.SnapshotCache.CreateWatch(req, sub, out)
}

func newManagement(ctx context.Context, ads bool, nodeID string, events *eventLog) (*management, error) {
	snapshots := cache.NewSnapshotCache(ads, cache.IDHash{}, quietLogger{})
	m := &management{
		ctx:    ctx,
		cache:  snapshots,
		xds:    server.NewServer(ctx, holdingCache{SnapshotCache: snapshots, events: events}, events),
		nodeID: nodeID,
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m.addr = lis.Addr().String()
	m.serve(lis)
	return m, nil
}

func (m *management) address() string { return m.addr }

// serve runs a new grpc.Server with ADS registered on lis; callers hold m.mu or own m.
func (m *management) serve(lis net.Listener) {
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, m.xds)
	m.grpc = g
	go func() {
		if err := g.Serve(lis); err != nil {
			log.Printf("ADS server on %s: %v", m.addr, err)
		}
	}()
}

// stop closes the ADS listener and every open stream at once (like a killed process).
func (m *management) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grpc != nil {
		m.grpc.Stop()
		m.grpc = nil
	}
}

// start listens again on the same port; it is a no-op when already serving.
func (m *management) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grpc != nil {
		return nil
	}
	lis, err := listenRetry(m.addr)
	if err != nil {
		return fmt.Errorf("ADS listener on %s: %w", m.addr, err)
	}
	m.serve(lis)
	return nil
}

func (m *management) serving() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.grpc != nil
}

// setSnapshot stores snap under version+1 for node (the rig's node id when empty) and returns
// that version.
func (m *management) setSnapshot(node string, build func(version string) (*cache.Snapshot, error), consistent bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	version := m.version + 1
	snap, err := build(fmt.Sprint(version))
	if err != nil {
		return 0, err
	}
	if consistent {
		if err := checkConsistent(snap); err != nil {
			return 0, fmt.Errorf("snapshot not consistent (send \"skip_consistency\": true to set it anyway): %w", err)
		}
	}
	if node == "" {
		node = m.nodeID
	}
	if err := m.cache.SetSnapshot(m.ctx, node, snap); err != nil {
		return 0, err
	}
	m.version = version
	return version, nil
}

// clear replaces every node's snapshot with an empty one (the next version). The cache keeps
// its per-node watch state, so a stream still open from an earlier test (a client that is
// shared or not yet closed) stays subscribed: it is told its resources are gone and gets the
// next snapshot set for it.
func (m *management) clear() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	nodes := map[string]bool{m.nodeID: true}
	for _, key := range m.cache.GetStatusKeys() {
		nodes[key] = true
	}
	for node := range nodes {
		if _, err := m.cache.GetSnapshot(node); err != nil {
			continue // never had one
		}
		m.version++
		empty, err := cache.NewSnapshot(fmt.Sprint(m.version), nil)
		if err != nil {
			return err
		}
		if err := m.cache.SetSnapshot(m.ctx, node, empty); err != nil {
			return err
		}
	}
	return nil
}

// listenRetry listens on addr, retrying for a moment while the port is still being released.
func listenRetry(addr string) (net.Listener, error) {
	var lastErr error
	for i := 0; i < 50; i++ {
		lis, err := net.Listen("tcp", addr)
		if err == nil {
			return lis, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, lastErr
}
