"""Independent gRPC servers the tests start on loopback: grpc-go, grpc-java, grpc-js, grpcio.

Each peer module (``go``, ``java``, ``node``, ``grpcio``) has:

* ``NAME``: the peer's name in the interop matrix;
* ``build() -> None``: builds what the peer needs from the pinned sources in ``peers/<name>/``
  (``go.mod``/``go.sum``, ``pom.xml``, ``package-lock.json``); quick when already built;
* ``start(tls: TlsFiles | None) -> PeerProcess``: starts the server on 127.0.0.1 at a free
  port and waits until it accepts connections;
* ``UNSUPPORTED: dict[str, str]``: interop test case -> why this server cannot run it.

``python -m tests.peers.build`` builds every peer (``scripts/test`` runs it before pytest).
"""
