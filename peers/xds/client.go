package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds" // registers the xds resolver and the xDS LB policies
)

type metadataFlag []string

func (m *metadataFlag) String() string     { return strings.Join(*m, ",") }
func (m *metadataFlag) Set(v string) error { *m = append(*m, v); return nil }

// runClient is the reference client: grpc-go's own xDS client on the rig's bootstrap, sending
// -n RPCs one after another (-interval apart; the first one wait-for-ready unless told otherwise) and printing {"counts": {server_id: n}, "errors": {"CODE: message":
// n}, "first_rpc_ms": t} as one JSON line.
func runClient(args []string) int {
	fs := flag.NewFlagSet("xdsrig client", flag.ContinueOnError)
	target := fs.String("target", "", "the target, e.g. xds:///svc")
	bootstrap := fs.String("bootstrap", "", "bootstrap JSON file (else grpc-go reads GRPC_XDS_BOOTSTRAP / GRPC_XDS_BOOTSTRAP_CONFIG)")
	n := fs.Int("n", 100, "number of RPCs")
	method := fs.String("method", "unary", "unary (UnaryCall, server_id from the response) or empty (EmptyCall, the hostname header)")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each RPC")
	waitForReady := fs.String("wait-for-ready", "first", "which RPCs are wait-for-ready: first, all or none")
	interval := fs.Duration("interval", 0, "pause between the end of one RPC and the start of the next")
	var md metadataFlag
	fs.Var(&md, "metadata", "key=value sent with every RPC (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *target == "" {
		fmt.Fprintln(os.Stderr, "xdsrig client: --target is required")
		return 2
	}
	if *waitForReady != "first" && *waitForReady != "all" && *waitForReady != "none" {
		fmt.Fprintf(os.Stderr, "xdsrig client: --wait-for-ready %q: want first, all or none\n", *waitForReady)
		return 2
	}
	if *method != "unary" && *method != "empty" {
		fmt.Fprintf(os.Stderr, "xdsrig client: --method %q: want unary or empty\n", *method)
		return 2
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if *bootstrap != "" {
		contents, err := os.ReadFile(*bootstrap)
		if err != nil {
			fmt.Fprintf(os.Stderr, "xdsrig client: --bootstrap: %v\n", err)
			return 2
		}
		builder, err := xds.NewXDSResolverWithConfigForTesting(contents)
		if err != nil {
			fmt.Fprintf(os.Stderr, "xdsrig client: bootstrap %s: %v\n", *bootstrap, err)
			return 2
		}
		opts = append(opts, grpc.WithResolvers(builder))
	}
	pairs := []string{}
	for _, kv := range md {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "xdsrig client: --metadata %q: want key=value\n", kv)
			return 2
		}
		pairs = append(pairs, k, v)
	}
	conn, err := grpc.NewClient(*target, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xdsrig client: %v\n", err)
		return 1
	}
	defer conn.Close()
	stub := testpb.NewTestServiceClient(conn)
	counts := map[string]int{}
	errors := map[string]int{}
	start := time.Now()
	firstMs := -1.0
	for i := 0; i < *n; i++ {
		if i > 0 && *interval > 0 {
			time.Sleep(*interval)
		}
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), pairs...), *timeout)
		wfr := grpc.WaitForReady(*waitForReady == "all" || (*waitForReady == "first" && i == 0))
		var id string
		if *method == "unary" {
			var resp *testpb.SimpleResponse
			resp, err = stub.UnaryCall(ctx, &testpb.SimpleRequest{}, wfr)
			id = resp.GetServerId()
		} else {
			var header metadata.MD
			_, err = stub.EmptyCall(ctx, &testpb.Empty{}, grpc.Header(&header), wfr)
			if v := header.Get("hostname"); len(v) > 0 {
				id = v[0]
			}
		}
		cancel()
		if err != nil {
			st := status.Convert(err)
			errors[fmt.Sprintf("%s: %s", st.Code(), st.Message())]++
			continue
		}
		if firstMs < 0 {
			firstMs = float64(time.Since(start).Microseconds()) / 1000
		}
		counts[id]++
	}
	line, _ := json.Marshal(map[string]any{"counts": counts, "errors": errors, "first_rpc_ms": firstMs})
	fmt.Println(string(line))
	return 0
}
