package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// controlAPI is the loopback HTTP+JSON API pytest drives the rig with. Every error answers
// 400 (bad input) or 500 with {"error": "..."} naming the problem.
type controlAPI struct {
	mgmt     *management
	backends *backendSet
	events   *eventLog
}

func (a *controlAPI) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /snapshot", a.putSnapshot)
	mux.HandleFunc("PUT /raw", a.putRaw)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, a.events.snapshot())
	})
	mux.HandleFunc("GET /backends", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]any{}
		for _, n := range a.backends.names() {
			b, _ := a.backends.get(n)
			out[n] = b.stats()
		}
		reply(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /reset-counts", func(w http.ResponseWriter, _ *http.Request) {
		a.resetCounts()
		reply(w, http.StatusOK, map[string]any{})
	})
	mux.HandleFunc("POST /reset", a.reset)
	mux.HandleFunc("POST /backend/{name}/{action}", a.backendAction)
	mux.HandleFunc("POST /ads/{action}", a.adsAction)
	mux.HandleFunc("GET /ads", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, map[string]any{"address": a.mgmt.address(), "serving": a.mgmt.serving()})
	})
	return mux
}

func reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	reply(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (a *controlAPI) resetCounts() {
	for _, n := range a.backends.names() {
		b, _ := a.backends.get(n)
		b.resetCounts()
	}
}

func (a *controlAPI) install(w http.ResponseWriter, sc *scenario) {
	resources, err := buildScenario(sc, a.backends.address)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	version, err := a.mgmt.setSnapshot(sc.NodeID, func(v string) (*cache.Snapshot, error) {
		return cache.NewSnapshot(v, resources)
	}, !sc.SkipConsistency)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	counts := map[string]int{}
	for typeURL, list := range resources {
		counts[shortType(typeURL)] = len(list)
	}
	reply(w, http.StatusOK, map[string]any{"version": version, "resources": counts})
}

func (a *controlAPI) putSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	var sc scenario
	if err := decodeStrict(body, &sc); err != nil {
		fail(w, http.StatusBadRequest, "scenario: %v", err)
		return
	}
	a.install(w, &sc)
}

// putRaw takes {"resources": [raw...], "node_id", "skip_consistency"}: a snapshot made of raw
// resources only (see rawResource).
func (a *controlAPI) putRaw(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		fail(w, http.StatusBadRequest, "reading the body: %v", err)
		return
	}
	var req struct {
		NodeID          string            `json:"node_id"`
		Resources       []json.RawMessage `json:"resources"`
		SkipConsistency bool              `json:"skip_consistency"`
	}
	if err := decodeStrict(body, &req); err != nil {
		fail(w, http.StatusBadRequest, "raw: %v", err)
		return
	}
	a.install(w, &scenario{NodeID: req.NodeID, Raw: req.Resources, SkipConsistency: req.SkipConsistency})
}

// reset puts the rig back as it started: every backend serving (and SERVING for health), the
// counts and events at zero, the ADS listener up, an empty snapshot for every node that had one.
func (a *controlAPI) reset(w http.ResponseWriter, _ *http.Request) {
	for _, n := range a.backends.names() {
		b, _ := a.backends.get(n)
		if err := b.setMode(modeServing); err != nil {
			fail(w, http.StatusInternalServerError, "backend %s: %v", n, err)
			return
		}
		_ = b.setServingStatus(true)
	}
	a.resetCounts()
	if err := a.mgmt.start(); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if err := a.mgmt.clear(); err != nil {
		fail(w, http.StatusInternalServerError, "clearing the snapshots: %v", err)
		return
	}
	a.events.reset()
	reply(w, http.StatusOK, map[string]any{})
}

func (a *controlAPI) backendAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	b, ok := a.backends.get(name)
	if !ok {
		fail(w, http.StatusNotFound, "no backend named %q (have %v)", name, a.backends.names())
		return
	}
	var err error
	switch action {
	case "stop":
		err = b.setMode(modeStopped)
	case "start":
		err = b.setMode(modeServing)
	case "blackhole":
		err = b.setMode(modeBlackhole)
	case "serving":
		err = b.setServingStatus(true)
	case "not_serving":
		err = b.setServingStatus(false)
	default:
		fail(w, http.StatusNotFound, "backend action %q: want stop, start, blackhole, serving or not_serving", action)
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "backend %s %s: %v", name, action, err)
		return
	}
	reply(w, http.StatusOK, b.stats())
}

func (a *controlAPI) adsAction(w http.ResponseWriter, r *http.Request) {
	switch action := r.PathValue("action"); action {
	case "stop":
		a.mgmt.stop()
	case "start":
		if err := a.mgmt.start(); err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
	default:
		fail(w, http.StatusNotFound, "ADS action %q: want stop or start", action)
		return
	}
	reply(w, http.StatusOK, map[string]any{"address": a.mgmt.address(), "serving": a.mgmt.serving()})
}

// resourceNameOfAny names a serialized resource for the event log ("" when it does not parse).
func resourceNameOfAny(typeURL string, value []byte) string {
	var msg types.Resource
	switch typeURL {
	case resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType:
		m, err := newResource(typeURL)
		if err != nil {
			return ""
		}
		msg = m
	default:
		return ""
	}
	if err := unmarshalLenient(value, msg); err != nil {
		return ""
	}
	return cache.GetResourceName(msg)
}
