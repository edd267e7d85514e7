"""Every README snippet runs as written: the Python doctests, the Python scripts (the torch
ones on their tiny models), and the command lines of the bash blocks (in a scratch folder that
sees the repository's ``examples/``; ``make`` lines are what CI itself runs)."""

from __future__ import annotations

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples():
    text = README.read_text()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0
    assert runner.tries >= 4


SCRIPTS = [b for b in _blocks("python") if ">>>" not in b]


@pytest.mark.parametrize("code", SCRIPTS, ids=[f"script{i}" for i in range(len(SCRIPTS))])
def test_readme_python_scripts_run(code, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip()  # each prints what it found


def _commands() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for cmd in block.replace("\\\n", "").splitlines():
            cmd = cmd.strip()
            if cmd and not cmd.startswith(("make ", "#")):
                out.append(cmd)
    return out


COMMANDS = _commands()


@pytest.mark.parametrize("line", COMMANDS, ids=[f"cmd{i}" for i in range(len(COMMANDS))])
def test_readme_command_lines_run(line, tmp_path_factory, monkeypatch, capsys):
    pytest.importorskip("sklearn")
    work = tmp_path_factory.getbasetemp() / "readme_cli"  # shared: the data line writes X.npy
    work.mkdir(exist_ok=True)
    if not (work / "examples").exists():
        (work / "examples").symlink_to(ROOT / "examples")
    cmd, _, comment = line.partition("  #")
    argv = shlex.split(cmd)
    want = re.search(r"exit (\d)", comment)
    expected = int(want.group(1)) if want else 0
    if argv[0] == "stability":  # in-process: the same entry point as the script
        from stability.cli import main

        monkeypatch.chdir(work)
        assert main(argv[1:]) == expected, (line, capsys.readouterr())
        assert "Traceback" not in capsys.readouterr().err
        return
    env = {**os.environ, "MPLBACKEND": "Agg"}
    res = subprocess.run(
        [sys.executable, *argv[1:]], cwd=work, capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == expected, (line, res.stdout[-500:], res.stderr[-500:])
    assert "Traceback" not in res.stderr


def test_the_command_lines_are_found():
    assert any("--data X.npy" in c for c in COMMANDS)
    assert any(c.startswith("python -c") for c in COMMANDS)
    assert sum(c.startswith("stability ") for c in COMMANDS) >= 6
