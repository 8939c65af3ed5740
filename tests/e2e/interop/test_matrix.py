"""The interop matrix (tests/peers/matrix.py): every case of grpc_lite's interop client
against grpc-go, grpc-java, grpc-js and grpcio servers, over plaintext and TLS.

Each test starts one server process on 127.0.0.1 (stopped by the test) and runs every case
on one channel. A case listed in the peer's UNSUPPORTED must fail there (its reason is
printed in the matrix); every other case must pass. The matrix is printed at the end of the
run (tests/e2e/interop/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers._base import TlsFiles, make_tls_files
from tests.peers.matrix import PEER_MODULES, Column, run_column

from .conftest import MATRIX


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(Path(tmp_path_factory.mktemp("interop-tls")))


@pytest.mark.integration
@pytest.mark.timeout(900)  # a cold build of a peer (normally done before pytest) is slow
@pytest.mark.parametrize("use_tls", [False, True], ids=["plaintext", "tls"])
@pytest.mark.parametrize("peer", PEER_MODULES)
async def test_interop_matrix(peer: str, use_tls: bool, tls_files: TlsFiles) -> None:
    import importlib

    module = importlib.import_module(f"tests.peers.{peer}")
    module.build()
    column: Column = await run_column(module, tls_files if use_tls else None)
    MATRIX.append(column)
    problems = column.problems()
    assert problems == [], f"{column.title}:\n" + "\n".join(problems)
