"""Sans-IO tests of the connection's state machine and endings
(grpc_lite/_transport/_connstate.py), with a real stream table and a recording listener."""

from __future__ import annotations

import pytest

from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connstate import CONNECTION_TRANSITIONS, ConnectionState, Lifecycle
from grpc_lite._transport._peer import PeerAnnouncements
from grpc_lite._transport._streams import StreamState, StreamTable

C = ConnectionState


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def connection_ready(self) -> None:
        self.events.append(("ready",))

    def connection_goaway(self, last_stream_id: int, code: int, debug: bytes) -> None:
        self.events.append(("goaway", last_stream_id, code, debug))

    def connection_closed(self, reason: str) -> None:
        self.events.append(("closed", reason))

    def ping_acked(self, data: bytes) -> None:
        self.events.append(("ping", data))


class Stream:
    """What the table and the lifecycle call on a stream."""

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.h2_state = StreamState.OPEN
        self.outcome: tuple[object, ...] | None = None

    def _on_unprocessed(self, reason: str) -> None:
        self.outcome = ("unprocessed", reason)

    def _on_error(self, code: int, message: str) -> None:
        self.outcome = ("error", code, message)


def make() -> tuple[Lifecycle, StreamTable, Listener, list[bytes]]:
    table, listener, sent = StreamTable(), Listener(), []
    return Lifecycle(table, PeerAnnouncements(), listener, sent.append), table, listener, sent


def test_moves_follow_the_table_and_keep_dead_in_step() -> None:
    life, *_ = make()
    for old in C:
        assert (C.CLOSED, old) not in CONNECTION_TRANSITIONS
    life.move(C.READY)
    assert (life.state, life.dead) == (C.READY, False)
    with pytest.raises(AssertionError, match="READY -> CONNECTING"):
        life.move(C.CONNECTING)
    life.move(C.CLOSED)
    assert (life.state, life.dead) == (C.CLOSED, True)


def test_settings_make_it_ready_once() -> None:
    life, _, listener, _ = make()
    life.settings_received()
    life.settings_received()
    assert life.state is C.READY
    assert listener.events == [("ready",)]


def test_drain_waits_for_the_last_open_stream_then_sends_goaway() -> None:
    life, table, listener, sent = make()
    life.settings_received()
    open_stream, queued = Stream(1), Stream(0)
    table.open[1] = open_stream  # type: ignore[assignment]
    table.pending.append(queued)  # type: ignore[arg-type]
    life.drain("going away")
    assert life.state is C.DRAINING
    assert queued.outcome == ("unprocessed", "going away")
    assert sent == []
    del table.open[1]
    life.finish_drain()
    assert life.state is C.CLOSED
    assert fr.parse_goaway(sent[0][9:]) == (0, fr.NO_ERROR, b"drained")
    assert listener.events[-1] == ("closed", "connection drained after GOAWAY")
    assert life.close_reason == "connection drained after GOAWAY"


def test_goaway_refuses_streams_above_its_last_id() -> None:
    life, table, listener, _ = make()
    life.settings_received()
    low, high = Stream(1), Stream(3)
    table.open.update({1: low, 3: high})  # type: ignore[dict-item]
    payload = fr.encode_goaway(1, fr.NO_ERROR, b"bye")[9:]
    life.recv_goaway(0, 0, payload)
    assert life.state is C.DRAINING
    assert high.outcome is not None and high.outcome[0] == "unprocessed"
    assert low.outcome is None
    assert ("goaway", 1, fr.NO_ERROR, b"bye") in listener.events
    with pytest.raises(fr.FrameError, match="GOAWAY on a stream"):
        life.recv_goaway(0, 1, payload)


def test_connection_error_sends_goaway_and_fails_open_streams_unavailable() -> None:
    life, table, listener, sent = make()
    life.settings_received()
    stream = Stream(1)
    table.open[1] = stream  # type: ignore[assignment]
    life.connection_error(fr.PROTOCOL_ERROR, "bad frame")
    assert fr.parse_goaway(sent[0][9:])[1] == fr.PROTOCOL_ERROR
    assert stream.outcome == ("error", 14, "connection error: PROTOCOL_ERROR: bad frame")
    life.close(fr.NO_ERROR, "again")  # closed already: nothing more
    life.lost("gone")
    assert len(sent) == 1
    assert [e[0] for e in listener.events].count("closed") == 1


def test_ids_exhausted_drains() -> None:
    life, _, listener, _ = make()
    life.settings_received()
    stream = Stream(0)
    life.ids_exhausted(stream)  # type: ignore[arg-type]
    assert stream.outcome == ("unprocessed", "stream ids exhausted on this connection")
    assert ("goaway", fr.MAX_STREAM_ID, fr.NO_ERROR, b"stream ids exhausted") in listener.events
    assert life.state is C.CLOSED  # nothing was open: drained at once
