"""Start a tiny local gRPC server and call it through every call kind with grpc_lite.

The server is a minimal gRPC server written here on ``h2``'s server side (a runtime
dependency), so this runs with nothing but the package installed:
``python examples/hello.py``.
"""

import asyncio

import h2.config
import h2.connection
import h2.events

import grpc_lite
from grpc_lite._proto import helloworld_pb2


class EchoServer(asyncio.Protocol):
    """A minimal HTTP/2 gRPC server: SayHello answers "Hello <name>", streams answer 3 times."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.conn.initiate_connection()
        self.transport.write(self.conn.data_to_send())  # type: ignore[attr-defined]
        self.bodies: dict[int, bytes] = {}
        self.paths: dict[int, str] = {}

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.paths[event.stream_id] = dict(event.headers)[":path"]
                self.bodies[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                self.bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.reply(event.stream_id)
        self.transport.write(self.conn.data_to_send())  # type: ignore[attr-defined]

    def reply(self, stream_id: int) -> None:
        body = self.bodies.pop(stream_id)
        names = []
        while body:
            length = int.from_bytes(body[1:5], "big")
            names.append(helloworld_pb2.HelloRequest.FromString(body[5 : 5 + length]).name)
            body = body[5 + length :]
        count = 3 if "Stream" in self.paths.pop(stream_id) else 1
        self.conn.send_headers(
            stream_id, [(":status", "200"), ("content-type", "application/grpc")]
        )
        for i in range(count):
            msg = helloworld_pb2.HelloReply(message=f"Hello {', '.join(names)} #{i}")
            payload = msg.SerializeToString()
            self.conn.send_data(stream_id, b"\0" + len(payload).to_bytes(4, "big") + payload)
        self.conn.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with grpc_lite.insecure_channel(f"127.0.0.1:{port}") as channel:
            req = helloworld_pb2.HelloRequest.SerializeToString
            rep = helloworld_pb2.HelloReply.FromString
            unary = channel.unary_unary("/helloworld.Greeter/SayHello", req, rep)
            reply = await unary(helloworld_pb2.HelloRequest(name="grpc_lite"), timeout=5)
            print("unary-unary:  ", reply.message)

            server_stream = channel.unary_stream(
                "/helloworld.Greeter/SayHelloStreamReply", req, rep
            )
            async for reply in server_stream(helloworld_pb2.HelloRequest(name="stream"), timeout=5):
                print("unary-stream: ", reply.message)

            client_stream = channel.stream_unary("/helloworld.Greeter/SayHello", req, rep)
            requests = [helloworld_pb2.HelloRequest(name=n) for n in ("a", "b", "c")]
            print("stream-unary: ", (await client_stream(iter(requests), timeout=5)).message)

            bidi = channel.stream_stream("/helloworld.Greeter/SayHelloStreamReply", req, rep)
            call = bidi(timeout=5)
            await call.write(helloworld_pb2.HelloRequest(name="bidi"))
            await call.done_writing()
            async for reply in call:
                print("stream-stream:", reply.message)
            print("status:       ", await call.code())
    finally:
        server.close()
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
