"""The command line, ``python -m dwconv``: its help lists every command, mistakes exit with status 2
and a message, and each command reaches its own code."""

import subprocess
import sys

import pytest

from dwconv import __main__ as cli
from dwconv import bench

COMMANDS = {"info": "instruction-set level", "bench": "PyTorch, ONNX Runtime and TensorFlow"}


def check_lists_every_command(text):
    assert "usage: python -m dwconv" in text
    for command, described in COMMANDS.items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [command])
        assert described in line


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_command_with_its_description(flag, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([flag])
    assert exited.value.code == 0
    check_lists_every_command(capsys.readouterr().out)


def test_no_arguments_prints_the_help_as_a_usage_error(capsys):
    assert cli.main([]) == 2
    check_lists_every_command(capsys.readouterr().err)


@pytest.mark.parametrize("argv, named", [(["benchmark"], "'benchmark'"), (["info", "--quick"], "--quick"),
                                         (["--quick", "bench"], "--quick")])
def test_a_mistake_is_named_after_the_usage(argv, named, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m dwconv") and named in err.splitlines()[-1]


def test_bench_options_reach_the_bench(monkeypatch):
    received = []
    monkeypatch.setattr(bench, "main", lambda argv: received.append(argv) or 0)
    assert cli.main(["bench", "--quick", "--help"]) == 0
    assert received == [["--quick", "--help"]]


def test_bench_help_lists_the_bench_options(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["bench", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m dwconv bench") and "--no-save" in out


def test_info_prints_the_configuration(capsys):
    assert cli.main(["info"]) == 0
    assert capsys.readouterr().out.startswith("dwconv ")


def test_module_runs_as_a_program():
    result = subprocess.run([sys.executable, "-m", "dwconv", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    check_lists_every_command(result.stdout)
