// Reference client for grpc_lite's benchmark suite: the "grpc-go" row of the table.
//
// It speaks the same line protocol as benchmarks/client.py (READY, MEASURE_START,
// MEASURE_END, RESULT {json}) and runs the same workloads against the same service
// (see benchmarks/goserver/main.go), so it shows what the server sustains when the
// client is not Python: the headroom above the Python clients.
//
// Built like the server, against the grpc-go pinned in benchmarks/go.mod, from benchmarks/:
//
//	go build -mod=readonly -o .build/benchclient ./goclient
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

const (
	unaryMethod    = "/grpc_lite.bench.Bench/Unary"
	streamMethod   = "/grpc_lite.bench.Bench/Stream"
	uploadMethod   = "/grpc_lite.bench.Bench/Upload"
	downloadMethod = "/grpc_lite.bench.Bench/Download"
	streamCount    = 10000000
	mib            = 1 << 20
)

// helloworld.HelloRequest(name="grpc_lite bench"), as in client.py.
var unaryPayload = append([]byte{0x0a, 15}, []byte("grpc_lite bench")...)

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case []byte:
		// SliceBuffer's Free is a no-op: shared replies are never recycled.
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	// data is owned by the transport only until Unmarshal returns: one copy, into
	// the caller's buffer when it is large enough.
	n := data.Len()
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	data.CopyTo(*p)
	return nil
}

func (rawCodec) Name() string { return "proto" }

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func main() {
	target := flag.String("target", "", "host:port, or ipv4:a:p,b:p,... for the rr workload")
	workload := flag.String("workload", "unary:1", "unary:N, stream:N, upload:N, download:N or rr:N")
	serviceConfig := flag.String("service-config", "", "service config JSON (rr workload)")
	duration := flag.Float64("duration", 3, "measured seconds")
	warmup := flag.Float64("warmup", 1, "warm-up seconds")
	flag.Parse()

	kind, nStr := *workload, "1"
	if i := strings.IndexByte(*workload, ':'); i >= 0 {
		kind, nStr = (*workload)[:i], (*workload)[i+1:]
	}
	n, err := strconv.Atoi(nStr)
	known := map[string]bool{"unary": true, "stream": true, "upload": true, "download": true, "rr": true}
	if err != nil || n < 1 || !known[kind] {
		fail("bad workload %q", *workload)
	}
	method, payload, bytesPerOp := unaryMethod, unaryPayload, 0
	switch kind {
	case "upload":
		// {bytes data = 1} of exactly 1 MiB on the wire, as in client.py.
		payload = append([]byte{0x0a}, binary.AppendUvarint(nil, mib-4)...)
		payload = append(payload, make([]byte, mib-4)...)
		method, bytesPerOp = uploadMethod, mib
	case "download":
		method, bytesPerOp = downloadMethod, mib
	}
	if kind != "stream" {
		kind = "unary" // upload, download and rr are unary calls too
	}

	encoding.RegisterCodecV2(rawCodec{})
	dialTarget := *target
	// NewClient connects on the first call (below, before READY); it resolves a
	// host:port target with the dns resolver (IP literals need no lookup).
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if strings.HasPrefix(dialTarget, "ipv4:") {
		// grpc-go has no ipv4: resolver: the same address list through a manual one.
		r := manual.NewBuilderWithScheme("benchrr")
		var addrs []resolver.Address
		for _, a := range strings.Split(strings.TrimPrefix(dialTarget, "ipv4:"), ",") {
			addrs = append(addrs, resolver.Address{Addr: a})
		}
		r.InitialState(resolver.State{Addresses: addrs})
		opts = append(opts, grpc.WithResolvers(r))
		dialTarget = "benchrr:///bench"
	}
	if *serviceConfig != "" {
		opts = append(opts, grpc.WithDefaultServiceConfig(*serviceConfig))
	}
	conn, err := grpc.NewClient(dialTarget, opts...)
	if err != nil {
		fail("dial: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var resp []byte
	if err := conn.Invoke(ctx, unaryMethod, unaryPayload, &resp); err != nil {
		fail("first call: %v", err)
	}
	fmt.Println("READY")

	var measuring, stop int32
	samples := make([][]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	streamReq := append([]byte{0x08}, binary.AppendUvarint(nil, streamCount)...)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var out []byte
			if kind == "unary" {
				for atomic.LoadInt32(&stop) == 0 {
					t0 := time.Now()
					if err := conn.Invoke(ctx, method, payload, &out); err != nil {
						errs <- err
						return
					}
					if atomic.LoadInt32(&measuring) == 1 {
						samples[w] = append(samples[w], time.Since(t0))
					}
				}
				return
			}
			desc := &grpc.StreamDesc{StreamName: "Stream", ServerStreams: true}
			for atomic.LoadInt32(&stop) == 0 {
				sctx, scancel := context.WithCancel(ctx)
				st, err := conn.NewStream(sctx, desc, streamMethod)
				if err == nil {
					err = st.SendMsg(streamReq)
				}
				if err == nil {
					err = st.CloseSend()
				}
				if err != nil {
					scancel()
					errs <- err
					return
				}
				last := time.Now()
				for atomic.LoadInt32(&stop) == 0 {
					if err := st.RecvMsg(&out); err != nil {
						break
					}
					t := time.Now()
					if atomic.LoadInt32(&measuring) == 1 {
						samples[w] = append(samples[w], t.Sub(last))
					}
					last = t
				}
				scancel()
			}
		}(w)
	}

	select {
	case err := <-errs:
		fail("rpc: %v", err)
	case <-time.After(time.Duration(*warmup * float64(time.Second))):
	}
	atomic.StoreInt32(&measuring, 1)
	fmt.Println("MEASURE_START")
	cpu0, t0 := cpuSeconds(), time.Now()
	select {
	case err := <-errs:
		fail("rpc: %v", err)
	case <-time.After(time.Duration(*duration * float64(time.Second))):
	}
	atomic.StoreInt32(&measuring, 0)
	elapsed, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
	fmt.Println("MEASURE_END")
	atomic.StoreInt32(&stop, 1)
	cancel()
	wg.Wait()

	var all []time.Duration
	for _, s := range samples {
		all = append(all, s...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) interface{} {
		if len(all) == 0 {
			return nil
		}
		k := int(q*float64(len(all)-1) + 0.5)
		return float64(all[k]) / 1e3
	}
	var cpuPerOp interface{}
	if len(all) > 0 {
		cpuPerOp = cpu / float64(len(all)) * 1e6
	}
	out, _ := json.Marshal(map[string]interface{}{
		"client":        "grpc_go",
		"workload":      *workload,
		"count":         len(all),
		"elapsed_s":     elapsed,
		"rate":          float64(len(all)) / elapsed,
		"p50_us":        pct(0.5),
		"p99_us":        pct(0.99),
		"client_cpu_s":  cpu,
		"cpu_per_op_us": cpuPerOp,
		"bytes_per_op":  bytesPerOp,
		"loop":          "go",
	})
	fmt.Println("RESULT " + string(out))
}
