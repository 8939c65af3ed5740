// h2echo: the cheapest gRPC unary echo server this benchmark can have, so a load
// generator's scaling over cores can be measured on a machine with few of them.
//
// It speaks just enough HTTP/2 (RFC 9113) and gRPC over HTTP/2 (grpc/grpc
// doc/PROTOCOL-HTTP2.md) for unary calls whose request is one DATA frame: when a
// stream's request ends (END_STREAM), it answers with the response headers, the
// request's DATA payload echoed back (the gRPC length-prefixed message, as
// benchmarks/goserver's /grpc_lite.bench.Bench/Unary echoes it), and the trailers
// (grpc-status 0). Request headers are never decoded: the method is not looked at and
// the client's HPACK state is not needed, since the response's header blocks use only
// never-indexed literals (RFC 7541 6.2.3) and so are encoded once and replayed. It
// acknowledges SETTINGS and PING, returns the connection-level receive window as DATA
// arrives, and writes what one read produced in one write. It is not a gRPC server:
// it is the fixed cost a real server would add, made as small as it goes.
//
// On start it prints "LISTENING <port>" on stdout (as benchmarks/goserver does); it
// stops on SIGTERM/SIGINT.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Send a connection WINDOW_UPDATE once this many request bytes were received.
const windowRefill = 1 << 20

func block(fields ...hpack.HeaderField) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range fields {
		f.Sensitive = true // never indexed: the block does not touch the dynamic table
		if err := enc.WriteField(f); err != nil {
			log.Fatal(err)
		}
	}
	return buf.Bytes()
}

var (
	responseHeaders = block(
		hpack.HeaderField{Name: ":status", Value: "200"},
		hpack.HeaderField{Name: "content-type", Value: "application/grpc"},
	)
	trailers = block(hpack.HeaderField{Name: "grpc-status", Value: "0"})
)

func serve(conn net.Conn) {
	defer conn.Close()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	w := bufio.NewWriterSize(conn, 64<<10)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(r, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	fr := http2.NewFramer(w, r)
	// Large windows both ways: the clients' streams never wait for us.
	if err := fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1 << 20},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30},
	); err != nil {
		return
	}
	if err := fr.WriteWindowUpdate(0, 1<<30); err != nil {
		return
	}
	received := 0
	for {
		if r.Buffered() == 0 { // everything read so far is answered: one write for it
			if err := w.Flush(); err != nil {
				return
			}
		}
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := frame.(type) {
		case *http2.DataFrame:
			received += int(f.Length)
			if received >= windowRefill {
				if err := fr.WriteWindowUpdate(0, uint32(received)); err != nil {
					return
				}
				received = 0
			}
			if f.StreamEnded() {
				id := f.StreamID
				err = fr.WriteHeaders(http2.HeadersFrameParam{
					StreamID: id, BlockFragment: responseHeaders, EndHeaders: true,
				})
				if err == nil {
					err = fr.WriteData(id, false, f.Data())
				}
				if err == nil {
					err = fr.WriteHeaders(http2.HeadersFrameParam{
						StreamID: id, BlockFragment: trailers, EndHeaders: true, EndStream: true,
					})
				}
				if err != nil {
					return
				}
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fr.WritePing(true, f.Data); err != nil {
					return
				}
			}
		case *http2.GoAwayFrame:
			_ = w.Flush()
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
		os.Exit(0)
	}()
	fmt.Printf("LISTENING %d\n", lis.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := lis.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn)
	}
}
