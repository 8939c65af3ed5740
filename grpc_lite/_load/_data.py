"""Request data and metadata: ghz's JSON with ``{{ }}`` templates, rendered per call.

Supported template actions (ghz's call data):

- fields ``{{.RequestNumber}}``, ``{{.WorkerID}}``, ``{{.UUID}}``, ``{{.Timestamp}}``,
  ``{{.TimestampUnix}}``, ``{{.TimestampUnixMilli}}``, ``{{.TimestampUnixNano}}``,
  ``{{.FullyQualifiedName}}``, ``{{.MethodName}}``, ``{{.ServiceName}}``,
  ``{{.InputName}}``, ``{{.OutputName}}``, ``{{.IsClientStreaming}}``,
  ``{{.IsServerStreaming}}``;
- functions ``{{newUUID}}``, ``{{randomString N}}``, ``{{randomInt MIN MAX}}``.

Anything else inside ``{{ }}`` is refused before the load starts. Data without actions is
parsed and serialized once; with actions, each call renders the JSON text, parses it
into the request message and serializes it.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format

from .._cli_shared import CliError

__all__ = ["CallContext", "DataSource", "MetadataSource", "Template"]

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_FIELDS = {
    "RequestNumber",
    "WorkerID",
    "UUID",
    "Timestamp",
    "TimestampUnix",
    "TimestampUnixMilli",
    "TimestampUnixNano",
    "FullyQualifiedName",
    "MethodName",
    "ServiceName",
    "InputName",
    "OutputName",
    "IsClientStreaming",
    "IsServerStreaming",
}
_ALNUM = string.ascii_letters + string.digits


class CallContext:
    """What a template sees for one call."""

    __slots__ = ("method", "request_number", "worker_id")

    def __init__(self, method: Any, request_number: int, worker_id: str) -> None:
        self.method = method
        self.request_number = request_number
        self.worker_id = worker_id

    def field(self, name: str) -> str:
        m = self.method
        if name == "RequestNumber":
            return str(self.request_number)
        if name == "WorkerID":
            return self.worker_id
        if name == "UUID":
            return str(uuid.uuid4())
        if name.startswith("Timestamp"):
            now = time.time_ns()
            if name == "Timestamp":
                stamp = _dt.datetime.fromtimestamp(now / 1e9, tz=_dt.UTC).astimezone()
                return stamp.replace(microsecond=0).isoformat()
            if name == "TimestampUnix":
                return str(now // 10**9)
            if name == "TimestampUnixMilli":
                return str(now // 10**6)
            return str(now)
        if name == "FullyQualifiedName":
            return f"{m.containing_service.full_name}.{m.name}"
        if name == "MethodName":
            return str(m.name)
        if name == "ServiceName":
            return str(m.containing_service.name)
        if name == "InputName":
            return str(m.input_type.name)
        if name == "OutputName":
            return str(m.output_type.name)
        if name == "IsClientStreaming":
            return "true" if m.client_streaming else "false"
        return "true" if m.server_streaming else "false"


def _compile_action(text: str, where: str) -> Callable[[CallContext], str]:
    words = text.split()
    if not words:
        raise CliError(f"empty template action '{{{{}}}}' in {where}")
    head, args = words[0], words[1:]
    if head.startswith(".") and not args:
        name = head[1:]
        if name not in _FIELDS:
            raise CliError(f"unknown template field {head!r} in {where}")
        return lambda ctx: ctx.field(name)
    if head == "newUUID" and not args:
        return lambda ctx: str(uuid.uuid4())
    try:
        numbers = [int(a) for a in args]
    except ValueError:
        numbers = []
    if head == "randomString" and len(args) == 1 and len(numbers) == 1 and numbers[0] >= 0:
        n = numbers[0]
        return lambda ctx: "".join(random.choices(_ALNUM, k=n))
    if head == "randomInt" and len(args) == 2 and len(numbers) == 2 and numbers[0] < numbers[1]:
        lo, hi = numbers
        return lambda ctx: str(random.randrange(lo, hi))
    raise CliError(f"unsupported template action '{{{{{text}}}}}' in {where}")


class Template:
    """A text with ``{{ }}`` actions, compiled once."""

    __slots__ = ("_parts", "has_actions", "text")

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        parts: list[str | Callable[[CallContext], str]] = []
        pos = 0
        for match in _ACTION.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            parts.append(_compile_action(match.group(1), where))
            pos = match.end()
        if pos < len(text):
            parts.append(text[pos:])
        if "{{" in "".join(p for p in parts if isinstance(p, str)):
            raise CliError(f"unclosed '{{{{' in {where}")
        self._parts = parts
        self.has_actions = any(not isinstance(p, str) for p in parts)

    def render(self, ctx: CallContext) -> str:
        if not self.has_actions:
            return self.text
        return "".join(p if isinstance(p, str) else p(ctx) for p in self._parts)


class DataSource:
    """Serialized requests for each call.

    ``messages(ctx)`` is the list of request messages (bytes) for one call: one for
    unary and server-streaming calls (an array's element ``RequestNumber % len``, as
    ghz), every element for client- and bidi-streaming calls.
    """

    def __init__(self, text: str, method: Any, request_cls: Any) -> None:
        self._method = method
        self._cls = request_cls
        self._streaming_input = bool(method.client_streaming)
        stripped = text.strip() or "{}"
        try:
            # Validate the JSON shape with the template actions replaced by a number.
            probe = json.loads(_ACTION.sub("0", stripped))
        except json.JSONDecodeError as exc:
            raise CliError(f"invalid data JSON: {exc}") from None
        if isinstance(probe, list):
            if not probe:
                raise CliError("the data JSON array is empty")
            if not all(isinstance(item, dict) for item in probe):
                raise CliError("the data JSON array must hold objects")
            items = (
                [json.dumps(item) for item in json.loads(stripped)]
                if "{{" not in stripped
                else None
            )
            self._array = True
        elif isinstance(probe, dict):
            items = [stripped] if "{{" not in stripped else None
            self._array = False
        else:
            raise CliError("the data must be a JSON object or an array of objects")
        self._template = Template(stripped, "the data")
        self._static: list[bytes] | None = None
        if items is not None and not self._template.has_actions:
            self._static = [self._serialize(item) for item in items]

    @property
    def static(self) -> list[bytes] | None:
        return self._static

    @property
    def has_actions(self) -> bool:
        return self._template.has_actions

    def _serialize(self, text: str) -> bytes:
        try:
            message = json_format.Parse(text, self._cls())
        except json_format.ParseError as exc:
            detail = str(exc).splitlines()[0] if str(exc) else "does not parse"
            raise CliError(
                f"the data does not fit {self._cls.DESCRIPTOR.full_name}: {detail}"
            ) from None
        return bytes(message.SerializeToString())

    def messages(self, ctx: CallContext) -> list[bytes]:
        static = self._static
        if static is None:
            rendered = self._template.render(ctx)
            try:
                value = json.loads(rendered)
            except json.JSONDecodeError as exc:
                raise CliError(f"the rendered data is not JSON: {exc}") from None
            if isinstance(value, list):
                static = [self._serialize(json.dumps(item)) for item in value]
            else:
                static = [self._serialize(rendered)]
        if self._streaming_input:
            return static
        return [static[ctx.request_number % len(static)]]

    def check(self, ctx: CallContext) -> None:
        """Render and serialize once: bad data fails here, before any load."""
        self.messages(ctx)


class MetadataSource:
    """Request metadata from ``-m`` JSON (string values, templates allowed)."""

    def __init__(self, text: str | None) -> None:
        self._static: list[tuple[str, str]] | None = []
        self._templates: list[tuple[str, Template]] = []
        if not text:
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"invalid metadata JSON: {exc}") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise CliError('the metadata must be a JSON object of strings, e.g. {"key": "value"}')
        for key, val in value.items():
            lowered = key.lower()
            if not lowered or lowered.startswith(":") or lowered.startswith("grpc-"):
                raise CliError(f"metadata key {key!r} is reserved")
            if lowered.endswith("-bin"):
                raise CliError(f"metadata key {key!r}: binary metadata is not supported")
            self._templates.append((lowered, Template(val, f"metadata {key!r}")))
        if any(t.has_actions for _, t in self._templates):
            self._static = None
        else:
            self._static = [(k, t.text) for k, t in self._templates]

    @property
    def static(self) -> list[tuple[str, str]] | None:
        return self._static

    def render(self, ctx: CallContext) -> list[tuple[str, str]]:
        if self._static is not None:
            return self._static
        return [(k, t.render(ctx)) for k, t in self._templates]
