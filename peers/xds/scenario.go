package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// scenario is the compact JSON body of PUT /snapshot (see tests/peers/xds.py for the format).
type scenario struct {
	NodeID          string            `json:"node_id"`
	Listeners       []listenerSpec    `json:"listeners"`
	Routes          []routeConfigSpec `json:"routes"`
	Clusters        []clusterSpec     `json:"clusters"`
	Endpoints       []endpointsSpec   `json:"endpoints"`
	Raw             []json.RawMessage `json:"raw"`
	SkipConsistency bool              `json:"skip_consistency"`
}

type listenerSpec struct {
	Name            string           `json:"name"`
	RouteConfigName string           `json:"route_config_name"`
	InlineRoute     *routeConfigSpec `json:"inline_route"`
}

type routeConfigSpec struct {
	Name         string            `json:"name"`
	VirtualHosts []virtualHostSpec `json:"virtual_hosts"`
}

type virtualHostSpec struct {
	Name    string      `json:"name"`
	Domains []string    `json:"domains"`
	Routes  []routeSpec `json:"routes"`
}

type routeSpec struct {
	Prefix           *string               `json:"prefix"`
	Path             *string               `json:"path"`
	Cluster          string                `json:"cluster"`
	WeightedClusters []weightedClusterSpec `json:"weighted_clusters"`
}

type weightedClusterSpec struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

type clusterSpec struct {
	Name           string  `json:"name"`
	EdsServiceName string  `json:"eds_service_name"`
	LbPolicy       string  `json:"lb_policy"`
	MaxRequests    *uint32 `json:"max_requests"`
}

type endpointsSpec struct {
	ClusterName   string             `json:"cluster_name"`
	Localities    []localitySpec     `json:"localities"`
	DropOverloads []dropOverloadSpec `json:"drop_overloads"`
}

type localitySpec struct {
	Region    string         `json:"region"`
	Zone      string         `json:"zone"`
	SubZone   string         `json:"sub_zone"`
	Weight    *uint32        `json:"weight"`
	Priority  uint32         `json:"priority"`
	Backends  []string       `json:"backends"`
	Addresses []string       `json:"addresses"`
	Endpoints []endpointSpec `json:"endpoints"`
	Health    string         `json:"health"`
}

type endpointSpec struct {
	Backend string  `json:"backend"`
	Address string  `json:"address"`
	Health  string  `json:"health"`
	Weight  *uint32 `json:"weight"`
}

type dropOverloadSpec struct {
	Category string `json:"category"`
	PPM      uint32 `json:"ppm"`
}

// rawResource is one entry of "raw" / PUT /raw: either a protojson Any ({"@type": URL, ...
// fields}) or {"type_url", "name", "append_bytes_b64" | "malformed": true} for a resource whose
// serialized bytes are the named message followed by the given bytes (malformed: bytes that
// no protobuf parser accepts).
type rawResource struct {
	TypeURL        string `json:"type_url"`
	Name           string `json:"name"`
	AppendBytesB64 string `json:"append_bytes_b64"`
	Malformed      bool   `json:"malformed"`
}

// A length-delimited field 1 whose length runs past the end of the message.
var malformedTail = []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}

func decodeStrict(data []byte, into any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

// builder turns a scenario into typed resources; backendAddr maps a rig backend name to its
// host:port.
type builder struct {
	backendAddr func(name string) (string, bool)
	resources   map[resource.Type][]types.Resource
}

func (b *builder) add(typeURL resource.Type, r types.Resource) {
	b.resources[typeURL] = append(b.resources[typeURL], r)
}

func buildScenario(sc *scenario, backendAddr func(string) (string, bool)) (map[resource.Type][]types.Resource, error) {
	b := &builder{backendAddr: backendAddr, resources: map[resource.Type][]types.Resource{
		resource.ListenerType: {}, resource.RouteType: {}, resource.ClusterType: {}, resource.EndpointType: {},
	}}
	for i, l := range sc.Listeners {
		r, err := b.listener(l)
		if err != nil {
			return nil, fmt.Errorf("listeners[%d]: %w", i, err)
		}
		b.add(resource.ListenerType, r)
	}
	for i, rc := range sc.Routes {
		r, err := b.routeConfig(rc)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		b.add(resource.RouteType, r)
	}
	for i, c := range sc.Clusters {
		r, err := b.cluster(c)
		if err != nil {
			return nil, fmt.Errorf("clusters[%d]: %w", i, err)
		}
		b.add(resource.ClusterType, r)
	}
	for i, e := range sc.Endpoints {
		r, err := b.endpoints(e)
		if err != nil {
			return nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		b.add(resource.EndpointType, r)
	}
	for i, raw := range sc.Raw {
		typeURL, r, err := decodeRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("raw[%d]: %w", i, err)
		}
		b.replace(typeURL, r)
	}
	return b.resources, nil
}

// replace puts r in place of the resource of the same type and name, or adds it.
func (b *builder) replace(typeURL resource.Type, r types.Resource) {
	name := cache.GetResourceName(r)
	list := b.resources[typeURL]
	for i, old := range list {
		if cache.GetResourceName(old) == name {
			list[i] = r
			return
		}
	}
	b.resources[typeURL] = append(list, r)
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
}

func (b *builder) listener(l listenerSpec) (*listener.Listener, error) {
	if l.Name == "" {
		return nil, fmt.Errorf("name is required")
	}
	manager := &hcm.HttpConnectionManager{}
	switch {
	case l.InlineRoute != nil && l.RouteConfigName != "":
		return nil, fmt.Errorf("listener %q: give route_config_name or inline_route, not both", l.Name)
	case l.InlineRoute != nil:
		rc, err := b.routeConfig(*l.InlineRoute)
		if err != nil {
			return nil, fmt.Errorf("listener %q inline_route: %w", l.Name, err)
		}
		manager.RouteSpecifier = &hcm.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	case l.RouteConfigName != "":
		manager.RouteSpecifier = &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: l.RouteConfigName,
		}}
	default:
		return nil, fmt.Errorf("listener %q: route_config_name or inline_route is required", l.Name)
	}
	routerConfig, err := anypb.New(&router.Router{})
	if err != nil {
		return nil, err
	}
	manager.HttpFilters = []*hcm.HttpFilter{{
		Name:       wellknown.Router,
		ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerConfig},
	}}
	apiListener, err := anypb.New(manager)
	if err != nil {
		return nil, err
	}
	return &listener.Listener{Name: l.Name, ApiListener: &listener.ApiListener{ApiListener: apiListener}}, nil
}

func (b *builder) routeConfig(rc routeConfigSpec) (*route.RouteConfiguration, error) {
	if rc.Name == "" {
		return nil, fmt.Errorf("name is required")
	}
	out := &route.RouteConfiguration{Name: rc.Name}
	for i, vh := range rc.VirtualHosts {
		name := vh.Name
		if name == "" {
			name = fmt.Sprintf("vh%d", i)
		}
		if len(vh.Domains) == 0 {
			return nil, fmt.Errorf("route %q virtual_hosts[%d]: domains is required", rc.Name, i)
		}
		v := &route.VirtualHost{Name: name, Domains: vh.Domains}
		for j, r := range vh.Routes {
			built, err := buildRoute(r)
			if err != nil {
				return nil, fmt.Errorf("route %q virtual_hosts[%d].routes[%d]: %w", rc.Name, i, j, err)
			}
			v.Routes = append(v.Routes, built)
		}
		out.VirtualHosts = append(out.VirtualHosts, v)
	}
	return out, nil
}

func buildRoute(r routeSpec) (*route.Route, error) {
	match := &route.RouteMatch{}
	switch {
	case r.Prefix != nil && r.Path != nil:
		return nil, fmt.Errorf("give prefix or path, not both")
	case r.Path != nil:
		match.PathSpecifier = &route.RouteMatch_Path{Path: *r.Path}
	case r.Prefix != nil:
		match.PathSpecifier = &route.RouteMatch_Prefix{Prefix: *r.Prefix}
	default:
		match.PathSpecifier = &route.RouteMatch_Prefix{Prefix: ""}
	}
	action := &route.RouteAction{}
	switch {
	case r.Cluster != "" && len(r.WeightedClusters) > 0:
		return nil, fmt.Errorf("give cluster or weighted_clusters, not both")
	case r.Cluster != "":
		action.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: r.Cluster}
	case len(r.WeightedClusters) > 0:
		wc := &route.WeightedCluster{}
		for _, c := range r.WeightedClusters {
			wc.Clusters = append(wc.Clusters, &route.WeightedCluster_ClusterWeight{
				Name: c.Name, Weight: wrapperspb.UInt32(c.Weight),
			})
		}
		action.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	default:
		return nil, fmt.Errorf("cluster or weighted_clusters is required")
	}
	return &route.Route{Match: match, Action: &route.Route_Route{Route: action}}, nil
}

func (b *builder) cluster(c clusterSpec) (*cluster.Cluster, error) {
	if c.Name == "" {
		return nil, fmt.Errorf("name is required")
	}
	policy := "ROUND_ROBIN"
	if c.LbPolicy != "" {
		policy = c.LbPolicy
	}
	lb, ok := cluster.Cluster_LbPolicy_value[policy]
	if !ok {
		return nil, fmt.Errorf("cluster %q: lb_policy %q is not an envoy.config.cluster.v3.Cluster.LbPolicy name", c.Name, policy)
	}
	out := &cluster.Cluster{
		Name:                 c.Name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig:   adsSource(),
			ServiceName: c.EdsServiceName,
		},
		LbPolicy: cluster.Cluster_LbPolicy(lb),
	}
	if c.MaxRequests != nil {
		out.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
			Priority:    core.RoutingPriority_DEFAULT,
			MaxRequests: wrapperspb.UInt32(*c.MaxRequests),
		}}}
	}
	return out, nil
}

func healthStatus(name string) (core.HealthStatus, error) {
	if name == "" {
		return core.HealthStatus_UNKNOWN, nil
	}
	v, ok := core.HealthStatus_value[strings.ToUpper(name)]
	if !ok {
		return 0, fmt.Errorf("health %q is not an envoy.config.core.v3.HealthStatus name", name)
	}
	return core.HealthStatus(v), nil
}

func (b *builder) address(backend, address string) (string, error) {
	switch {
	case backend != "" && address != "":
		return "", fmt.Errorf("give backend or address, not both")
	case backend != "":
		addr, ok := b.backendAddr(backend)
		if !ok {
			return "", fmt.Errorf("no rig backend named %q", backend)
		}
		return addr, nil
	case address != "":
		return address, nil
	default:
		return "", fmt.Errorf("backend or address is required")
	}
}

func lbEndpoint(hostport string, health core.HealthStatus, weight *uint32) (*endpoint.LbEndpoint, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", hostport, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: bad port", hostport)
	}
	ep := &endpoint.LbEndpoint{
		HealthStatus: health,
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Protocol:      core.SocketAddress_TCP,
				Address:       host,
				PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
			}}},
		}},
	}
	if weight != nil {
		ep.LoadBalancingWeight = wrapperspb.UInt32(*weight)
	}
	return ep, nil
}

func (b *builder) endpoints(e endpointsSpec) (*endpoint.ClusterLoadAssignment, error) {
	if e.ClusterName == "" {
		return nil, fmt.Errorf("cluster_name is required")
	}
	out := &endpoint.ClusterLoadAssignment{ClusterName: e.ClusterName}
	for i, l := range e.Localities {
		where := fmt.Sprintf("endpoints %q localities[%d]", e.ClusterName, i)
		health, err := healthStatus(l.Health)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		loc := &endpoint.LocalityLbEndpoints{
			Locality: &core.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone},
			Priority: l.Priority,
		}
		weight := uint32(1)
		if l.Weight != nil {
			weight = *l.Weight
		}
		loc.LoadBalancingWeight = wrapperspb.UInt32(weight)
		for _, name := range l.Backends {
			addr, err := b.address(name, "")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			ep, err := lbEndpoint(addr, health, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			loc.LbEndpoints = append(loc.LbEndpoints, ep)
		}
		for _, addr := range l.Addresses {
			ep, err := lbEndpoint(addr, health, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			loc.LbEndpoints = append(loc.LbEndpoints, ep)
		}
		for j, spec := range l.Endpoints {
			addr, err := b.address(spec.Backend, spec.Address)
			if err != nil {
				return nil, fmt.Errorf("%s endpoints[%d]: %w", where, j, err)
			}
			h := health
			if spec.Health != "" {
				if h, err = healthStatus(spec.Health); err != nil {
					return nil, fmt.Errorf("%s endpoints[%d]: %w", where, j, err)
				}
			}
			ep, err := lbEndpoint(addr, h, spec.Weight)
			if err != nil {
				return nil, fmt.Errorf("%s endpoints[%d]: %w", where, j, err)
			}
			loc.LbEndpoints = append(loc.LbEndpoints, ep)
		}
		out.Endpoints = append(out.Endpoints, loc)
	}
	if len(e.DropOverloads) > 0 {
		out.Policy = &endpoint.ClusterLoadAssignment_Policy{}
		for _, d := range e.DropOverloads {
			out.Policy.DropOverloads = append(out.Policy.DropOverloads, &endpoint.ClusterLoadAssignment_Policy_DropOverload{
				Category: d.Category,
				DropPercentage: &typev3.FractionalPercent{
					Numerator:   d.PPM,
					Denominator: typev3.FractionalPercent_MILLION,
				},
			})
		}
	}
	return out, nil
}

// knownTypes are the resource types a snapshot can hold here.
var knownTypes = map[string]bool{
	resource.ListenerType: true, resource.RouteType: true, resource.ClusterType: true, resource.EndpointType: true,
}

// decodeRaw reads one raw resource (see rawResource).
func decodeRaw(data json.RawMessage) (resource.Type, types.Resource, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := probe["@type"]; ok {
		var a anypb.Any
		if err := protojson.Unmarshal(data, &a); err != nil {
			return "", nil, fmt.Errorf("protojson: %w", err)
		}
		if !knownTypes[a.GetTypeUrl()] {
			return "", nil, fmt.Errorf("@type %q is not one of LDS/RDS/CDS/EDS's types", a.GetTypeUrl())
		}
		msg, err := a.UnmarshalNew()
		if err != nil {
			return "", nil, err
		}
		if cache.GetResourceName(msg) == "" {
			return "", nil, fmt.Errorf("%s: the resource has no name", a.GetTypeUrl())
		}
		return a.GetTypeUrl(), msg, nil
	}
	var r rawResource
	if err := decodeStrict(data, &r); err != nil {
		return "", nil, fmt.Errorf("neither a protojson Any (no \"@type\") nor {type_url, name, append_bytes_b64|malformed}: %w", err)
	}
	if r.Name == "" {
		return "", nil, fmt.Errorf("name is required")
	}
	msg, err := newResource(r.TypeURL)
	if err != nil {
		return "", nil, err
	}
	switch m := msg.(type) {
	case *endpoint.ClusterLoadAssignment:
		m.ClusterName = r.Name
	case *listener.Listener:
		m.Name = r.Name
	case *route.RouteConfiguration:
		m.Name = r.Name
	case *cluster.Cluster:
		m.Name = r.Name
	}
	tail := []byte{}
	switch {
	case r.Malformed && r.AppendBytesB64 != "":
		return "", nil, fmt.Errorf("give malformed or append_bytes_b64, not both")
	case r.Malformed:
		tail = malformedTail
	case r.AppendBytesB64 != "":
		if tail, err = base64.StdEncoding.DecodeString(r.AppendBytesB64); err != nil {
			return "", nil, fmt.Errorf("append_bytes_b64: %w", err)
		}
	default:
		return "", nil, fmt.Errorf("malformed or append_bytes_b64 is required (or give a protojson Any with \"@type\")")
	}
	// Unknown fields are written out verbatim after the known ones when the message is marshaled.
	msg.ProtoReflect().SetUnknown(tail)
	return r.TypeURL, msg, nil
}

// newResource is an empty message of an LDS/RDS/CDS/EDS type URL.
func newResource(typeURL string) (types.Resource, error) {
	switch typeURL {
	case resource.ListenerType:
		return &listener.Listener{}, nil
	case resource.RouteType:
		return &route.RouteConfiguration{}, nil
	case resource.ClusterType:
		return &cluster.Cluster{}, nil
	case resource.EndpointType:
		return &endpoint.ClusterLoadAssignment{}, nil
	}
	return nil, fmt.Errorf("type_url %q is not one of LDS/RDS/CDS/EDS's types", typeURL)
}

func unmarshalLenient(value []byte, into types.Resource) error {
	return proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(value, into)
}
