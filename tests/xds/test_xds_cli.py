"""`grpc-lite xds check|dump` on bad input: every problem is one line naming it, exit 1
(the management server paths run against the rig in tests/e2e/xds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grpc_lite.xds import cli_main

GOOD = (
    '{"xds_servers": [{"server_uri": "127.0.0.1:1", "channel_creds": [{"type": "insecure"}]}],'
    ' "node": {"id": "n1"}}'
)


@pytest.fixture(autouse=True)
def no_bootstrap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRPC_XDS_BOOTSTRAP", raising=False)
    monkeypatch.delenv("GRPC_XDS_BOOTSTRAP_CONFIG", raising=False)


@pytest.mark.parametrize("command", [["check"], ["dump", "xds:///svc"]])
def test_missing_bootstrap_names_the_variables(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no xDS bootstrap" in err
    assert "GRPC_XDS_BOOTSTRAP" in err and "GRPC_XDS_BOOTSTRAP_CONFIG" in err


def test_unreadable_bootstrap_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert cli_main(["check", "--bootstrap", str(missing)]) == 1
    assert f"GRPC_XDS_BOOTSTRAP={missing}: cannot read the file" in capsys.readouterr().err


def test_invalid_bootstrap_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.json"
    path.write_text('{"xds_servers": [{"channel_creds": [{"type": "insecure"}]}]}')
    assert cli_main(["check", "--bootstrap", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "server_uri" in err


def test_bootstrap_from_the_environment_is_summarised_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.json"
    path.write_text(GOOD.replace("127.0.0.1:1", "bad uri with spaces"))
    monkeypatch.setenv("GRPC_XDS_BOOTSTRAP", str(path))
    code = cli_main(["check", "--timeout", "1s"])
    out, err = capsys.readouterr()
    assert out.startswith(f"bootstrap: GRPC_XDS_BOOTSTRAP={path}: ok\n")
    assert "server:    bad uri with spaces (insecure)" in out
    assert code == 1
    assert "bootstrap server_uri 'bad uri with spaces': invalid target" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("dns:///svc", "dump needs an xds: target"),
        ("xds://authority/svc", "gRFC A47"),
        ("xds:///", "empty name"),
    ],
)
def test_dump_bad_targets(
    target: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bootstrap.json"
    path.write_text(GOOD)
    assert cli_main(["dump", target, "--bootstrap", str(path)]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["check", "--timeout", "soon"], ["check", "--timeout", "0"], ["dump"], []]
)
def test_usage_errors_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 1
    assert "grpc-lite xds" in capsys.readouterr().err
