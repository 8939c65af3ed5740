// Pins grpc-go for the interop test peer (tests/peers/go.py). The interop server is
// grpc-go's own main package, listed as a tool so that go.sum covers it:
//
//	go build -mod=readonly -o ../../build/peers/go-interop-server google.golang.org/grpc/interop/server
//
// Upgrade: go get -tool google.golang.org/grpc/interop/server@vX.Y.Z && go mod tidy
// (and VERSION in tests/peers/go.py).
module grpclite.test/peers/go

go 1.26.0

tool google.golang.org/grpc/interop/server

require (
	cloud.google.com/go/compute/metadata v0.9.0 // indirect
	github.com/cncf/xds/go v0.0.0-20260202195803-dba9d589def2 // indirect
	github.com/envoyproxy/protoc-gen-validate v1.3.3 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/oauth2 v0.36.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
