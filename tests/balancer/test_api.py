"""The balancer API's per-RPC values (grpc_lite/balancer/_api.py): `PickInfo` and
`PickResult` are frozen dataclasses whose __init__ is written by hand (fewer instructions per
RPC); they keep the dataclass's fields, keyword-only construction, defaults, equality, hash,
repr and FrozenInstanceError. `RpcInfo` (grpc_lite/resolver/_api.py) is built the same way."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from grpc_lite.balancer import PickInfo, PickResult
from grpc_lite.resolver import RpcInfo
from grpc_lite.status import StatusCode

SC: Any = object()


def _done(code: StatusCode) -> None:
    pass


CASES: list[tuple[type, dict[str, Any], dict[str, Any]]] = [
    (
        PickInfo,
        {"method": "/p.S/M"},
        {"previous_subchannels": (SC,), "metadata": (("k", "v"),), "attributes": {"a": 1}},
    ),
    (PickResult, {"subchannel": SC}, {"on_done": _done}),
    (RpcInfo, {"method": "/p.S/M"}, {"metadata": (("k", b"\x00"),)}),
]


@pytest.mark.parametrize(("cls", "required", "optional"), CASES)
def test_a_per_rpc_value_is_still_the_frozen_keyword_only_dataclass(
    cls: type, required: dict[str, Any], optional: dict[str, Any]
) -> None:
    assert dataclasses.is_dataclass(cls)
    fields = dataclasses.fields(cls)
    assert [f.name for f in fields] == [*required, *optional]
    assert all(f.kw_only for f in fields)
    assert cls.__slots__ == tuple(f.name for f in fields)
    plain = cls(**required)
    for f in fields[len(required) :]:
        assert getattr(plain, f.name) == f.default  # the defaults are the dataclass's
    full = cls(**required, **optional)
    for name, value in {**required, **optional}.items():
        assert getattr(full, name) is value
    same = cls(**required, **optional)
    assert full == same and full is not same
    assert full != plain and plain == cls(**required)
    if cls is not PickInfo:  # (a PickInfo with a dict of attributes is not hashable)
        assert hash(full) == hash(same)
    assert hash(plain) == hash(cls(**required))
    assert (
        repr(plain)
        == f"{cls.__name__}("
        + ", ".join(f"{f.name}={getattr(plain, f.name)!r}" for f in fields)
        + ")"
    )
    name = fields[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(full, name, "other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(full, name)
    assert dataclasses.replace(full, **required) == full
    assert copy.copy(full) == full
    if cls is not PickResult:  # (its subchannel here is a bare object())
        assert pickle.loads(pickle.dumps(plain)) == plain
    with pytest.raises(TypeError, match="positional"):
        cls(*required.values())
    with pytest.raises(TypeError, match=f"required keyword-only argument: '{name}'"):
        cls()
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        cls(**required, nope=1)
