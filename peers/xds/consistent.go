package main

import (
	"fmt"
	"sort"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// checkConsistent is go-control-plane's Snapshot.Consistent() (every endpoints resource a
// cluster names exists and no other) extended to gRPC's API listeners, which
// Consistent() does not look into: the RouteConfigurations named by the listeners' HTTP
// connection managers (api_listener) are exactly the snapshot's.
func checkConsistent(snap *cache.Snapshot) error {
	clustersAndEndpoints := map[resource.Type][]types.Resource{}
	for _, typeURL := range []resource.Type{resource.ClusterType, resource.EndpointType} {
		for _, r := range snap.GetResources(typeURL) {
			clustersAndEndpoints[typeURL] = append(clustersAndEndpoints[typeURL], r)
		}
	}
	partial, err := cache.NewSnapshot("check", clustersAndEndpoints)
	if err != nil {
		return err
	}
	if err := partial.Consistent(); err != nil {
		return err
	}
	referenced := map[string]bool{}
	for name, r := range snap.GetResources(resource.ListenerType) {
		l, ok := r.(*listener.Listener)
		if !ok || l.GetApiListener() == nil {
			continue
		}
		var manager hcm.HttpConnectionManager
		if err := l.GetApiListener().GetApiListener().UnmarshalTo(&manager); err != nil {
			return fmt.Errorf("listener %q: api_listener: %w", name, err)
		}
		if rds := manager.GetRds().GetRouteConfigName(); rds != "" {
			referenced[rds] = true
		}
	}
	have := snap.GetResources(resource.RouteType)
	var missing, extra []string
	for name := range referenced {
		if _, ok := have[name]; !ok {
			missing = append(missing, name)
		}
	}
	for name := range have {
		if !referenced[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		return fmt.Errorf("route configurations named by listeners but absent: %v; present but named by no listener: %v", missing, extra)
	}
	return nil
}
