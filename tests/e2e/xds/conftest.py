"""Fixtures for the xDS end-to-end tests: the rig of tests/peers/xds.py (a go-control-plane
management server, grpc-go TestService backends b0..b7 and a control API).

``xds_rig``: the rig in ADS mode (go-control-plane's ``ads=true`` snapshot cache), one process
for the session, reset before each test (every backend serving, counts and events at zero,
ADS listening, no snapshot). ``xds_rig_subset``: the same with ``ads=false`` (a request is
answered with the subset of the snapshot it names; missing listeners and clusters are
absent at once). Each process is started on first use and stopped at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers import xds


@pytest.fixture(scope="session")
def xds_rig_session() -> Iterator[xds.XdsRig]:
    rig = xds.start(ads=True)
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture(scope="session")
def xds_rig_subset_session() -> Iterator[xds.XdsRig]:
    rig = xds.start(ads=False)
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def xds_rig(xds_rig_session: xds.XdsRig) -> xds.XdsRig:
    """The ADS-mode rig, reset for this test."""
    xds_rig_session.reset()
    return xds_rig_session


@pytest.fixture
def xds_rig_subset(xds_rig_subset_session: xds.XdsRig) -> xds.XdsRig:
    """The subset-mode (``ads=false``) rig, reset for this test."""
    xds_rig_subset_session.reset()
    return xds_rig_subset_session


@pytest.fixture
def xds_bootstrap_env(xds_rig: xds.XdsRig, monkeypatch: pytest.MonkeyPatch) -> str:
    """GRPC_XDS_BOOTSTRAP_CONFIG set to the ADS-mode rig's bootstrap for this test (and
    GRPC_XDS_BOOTSTRAP unset); returns the JSON text."""
    text = xds_rig.bootstrap_json()
    monkeypatch.delenv("GRPC_XDS_BOOTSTRAP", raising=False)
    monkeypatch.setenv("GRPC_XDS_BOOTSTRAP_CONFIG", text)
    return text
