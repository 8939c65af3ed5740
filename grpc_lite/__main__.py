"""``python -m grpc_lite``: the grpc-lite command."""

from ._cli import main

main()
