// Command xdsrig is the xDS test rig of grpc_lite's end-to-end tests (tests/peers/xds.py):
// a go-control-plane management server (ADS, state of the world), N grpc-go
// grpc.testing.TestService backends and a loopback HTTP+JSON control API, all in one process.
//
//	xdsrig [--backends N] [--backend-hosts 127.0.0.1,...] [--ads=true] [--node-id ID]
//	xdsrig client --target xds:///svc -n N [--bootstrap FILE] [--method unary|empty] [--metadata k=v]
//
// The server prints one JSON line on stdout ({"ads", "control", "backends", "node_id"}) and
// nothing else there; logs go to stderr. It exits when stdin closes (so a test run that dies
// never leaks it), on SIGTERM or on SIGINT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		os.Exit(runClient(os.Args[2:]))
	}
	os.Exit(runServer(os.Args[1:]))
}

func runServer(args []string) int {
	fs := flag.NewFlagSet("xdsrig", flag.ContinueOnError)
	numBackends := fs.Int("backends", 4, "number of TestService backends (named b0, b1, ...)")
	hostList := fs.String("backend-hosts", "127.0.0.1", "comma-separated loopback IPs the backends listen on, assigned in turn")
	ads := fs.Bool("ads", true, "snapshot cache in ADS mode: a response waits until the request names every resource of its type in the snapshot")
	nodeID := fs.String("node-id", "grpc-lite-xds-test", "the node id snapshots are set for (the bootstrap's node.id)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log.SetOutput(os.Stderr)
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if *numBackends < 0 {
		log.Printf("--backends must be >= 0, got %d", *numBackends)
		return 2
	}
	hosts := strings.Split(*hostList, ",")
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			log.Printf("--backend-hosts: %q is not a loopback IP", h)
			return 2
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	events := newEventLog()
	mgmt, err := newManagement(ctx, *ads, *nodeID, events)
	if err != nil {
		log.Printf("management server: %v", err)
		return 1
	}
	defer mgmt.stop()

	backends := newBackendSet()
	for i := 0; i < *numBackends; i++ {
		name := fmt.Sprintf("b%d", i)
		if _, err := backends.add(name, hosts[i%len(hosts)]); err != nil {
			log.Printf("backend %s: %v", name, err)
			backends.stopAll()
			return 1
		}
	}
	defer backends.stopAll()

	api := &controlAPI{mgmt: mgmt, backends: backends, events: events}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Printf("control API: %v", err)
		return 1
	}
	httpServer := &http.Server{Handler: api.routes()}
	go func() {
		if err := httpServer.Serve(lis); err != nil && err != http.ErrServerClosed {
			log.Printf("control API: %v", err)
		}
	}()
	defer httpServer.Close()

	announce := map[string]any{
		"ads":      mgmt.address(),
		"control":  lis.Addr().String(),
		"backends": backends.addresses(),
		"node_id":  *nodeID,
		"ads_mode": *ads,
	}
	line, _ := json.Marshal(announce)
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		return 1
	}

	done := make(chan string, 2)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		done <- "stdin closed"
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { done <- (<-sigs).String() }()
	log.Printf("exiting: %s", <-done)
	return 0
}
