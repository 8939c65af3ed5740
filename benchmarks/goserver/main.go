// Benchmark server for grpc_lite's benchmark suite (benchmarks/run.py).
//
// A grpc-go server with one hand-written service, grpc_lite.bench.Bench:
//
//	/grpc_lite.bench.Bench/Unary   unary echo: the response is the request bytes.
//	/grpc_lite.bench.Bench/Stream  server streaming: the request is a protobuf
//	                               message whose field 1 (varint) is a count N;
//	                               the server sends N copies of a fixed small
//	                               protobuf message (field 1 = a short string).
//	/grpc_lite.bench.Bench/Upload  unary: the request is any size (the 1 MiB
//	                               request workload); the reply is small (the
//	                               request's length as {int64 size = 1}).
//	/grpc_lite.bench.Bench/Download unary: the reply is 1 MiB (or field 1 of the
//	                               request, a varint, bytes) of a bytes field.
//	/grpc_lite.bench.Bench/Sleep   unary: waits field 1 of the request (varint)
//	                               milliseconds, then echoes the request (the scale
//	                               script's concurrent in-flight RPCs).
//
// Messages are passed through as raw bytes by a codec registered under the name
// "proto" (it replaces grpc-go's protobuf codec in this process), so no generated
// code is needed and the clients send ordinary protobuf bytes with
// content-type application/grpc.
//
// Built against the grpc-go pinned in benchmarks/go.mod (go.sum committed), from
// benchmarks/:
//
//	go build -mod=readonly -o .build/benchserver ./goserver
//
// On start it prints "LISTENING <port>" on stdout; it stops on SIGTERM/SIGINT.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// rawCodec passes []byte through unchanged (an encoding.CodecV2, grpc-go's codec
// interface since 1.66: messages as mem.BufferSlice).
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

// streamItem is the protobuf encoding of a message {string name = 1} with name
// "grpc_lite bench!" (16 bytes): 18 bytes in all.
var streamItem = append([]byte{0x0a, 16}, []byte("grpc_lite bench!")...)

const defaultStreamCount = 1000

// downloadSize is the default Download reply payload: 1 MiB.
const downloadSize = 1 << 20

// bytesMessage encodes {bytes data = 1} with n bytes of payload.
func bytesMessage(n int) []byte {
	out := []byte{0x0a}
	out = binary.AppendUvarint(out, uint64(n))
	body := make([]byte, n)
	for i := range body {
		body[i] = byte(i)
	}
	return append(out, body...)
}

var downloadReply []byte

func init() {
	// Exactly 1 MiB on the wire as a message: tag + 3-byte varint + payload.
	downloadReply = bytesMessage(downloadSize - 4)
	if len(downloadReply) != downloadSize {
		panic(fmt.Sprintf("download reply is %d bytes", len(downloadReply)))
	}
}

func uploadHandler(_ interface{}, _ context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	return append([]byte{0x08}, binary.AppendUvarint(nil, uint64(len(in)))...), nil
}

func sleepHandler(_ interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	if len(in) >= 2 && in[0] == 0x08 {
		if ms, k := binary.Uvarint(in[1:]); k > 0 {
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return in, nil
}

func downloadHandler(_ interface{}, _ context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	if len(in) >= 2 && in[0] == 0x08 {
		if n, k := binary.Uvarint(in[1:]); k > 0 && n < 64<<20 {
			return bytesMessage(int(n)), nil
		}
	}
	return downloadReply, nil
}

func unaryHandler(_ interface{}, _ context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
	var in []byte
	if err := dec(&in); err != nil {
		return nil, err
	}
	return in, nil
}

// parseCount reads field 1 (varint) of a protobuf message.
func parseCount(req []byte) int {
	if len(req) >= 2 && req[0] == 0x08 {
		if n, k := binary.Uvarint(req[1:]); k > 0 {
			return int(n)
		}
	}
	return defaultStreamCount
}

func streamHandler(srv interface{}, stream grpc.ServerStream) error {
	var in []byte
	if err := stream.RecvMsg(&in); err != nil {
		return err
	}
	n := parseCount(in)
	for i := 0; i < n; i++ {
		if err := stream.SendMsg(streamItem); err != nil {
			return err
		}
	}
	return nil
}

type benchServer interface{}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "grpc_lite.bench.Bench",
	HandlerType: (*benchServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Unary", Handler: unaryHandler},
		{MethodName: "Upload", Handler: uploadHandler},
		{MethodName: "Download", Handler: downloadHandler},
		{MethodName: "Sleep", Handler: sleepHandler},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		Handler:       streamHandler,
		ServerStreams: true,
	}},
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()

	encoding.RegisterCodecV2(rawCodec{})

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	s := grpc.NewServer(
		// Large windows so that flow control never throttles the streaming
		// workload on loopback; the client's own window still applies.
		grpc.InitialWindowSize(1<<24),
		grpc.InitialConnWindowSize(1<<24),
		grpc.MaxRecvMsgSize(64<<20),
		grpc.MaxSendMsgSize(64<<20),
	)
	s.RegisterService(&serviceDesc, struct{}{})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()

	fmt.Printf("LISTENING %d\n", lis.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	if err := s.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
