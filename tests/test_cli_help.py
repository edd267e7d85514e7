"""The command line explains itself: help with descriptions, examples and exit codes on every
subcommand, help text on every flag, usage on a bare call, close-match suggestions for
mistyped flags, commands, optimizer names and config keys, and the heavy-ball vocabulary."""

from __future__ import annotations

import argparse

import pytest

import stability as stb
from stability.cli import main
from stability.cli.parser import build_parser


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("command", ["check", "derive", "sweep"])
def test_every_subcommand_help_has_a_description_examples_and_exit_codes(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    assert "examples:" in out and "exit codes:" in out and f"stability {command}" in out
    sub = _subparsers()[command]
    assert sub.description and len(sub.description) > 60
    for action in sub._actions:
        assert action.help and action.help != argparse.SUPPRESS, (command, action.dest)


def test_the_top_level_help_and_a_bare_call(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "check" in out and "derive" in out and "exit codes:" in out
    code, out, err = run([], capsys)
    assert code == 2 and "usage: stability" in err and "COMMAND --help" in err and not out


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["check", "--lamda-max", "5"], "did you mean '--lambda-max'?"),
        (["check", "--lr", "0.1", "--momentun", "0.9"], "did you mean '--momentum'?"),
        (["chek"], "did you mean 'check'?"),
        (["check", "--optimizer", "adamm", "--lr", "0.1"], "did you mean 'adam'?"),
        (["check", "--optimizer", "heavy_ball"], "heavy ball with step alpha"),
        (["derive", "nesterv"], "did you mean 'nesterov'?"),
        (["sweep", "--lr", "0.1", "--momentun", "0.9", "--out", "x.csv"], "'--momentum'"),
    ],
)
def test_mistakes_get_the_close_match(argv, hint, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("error: ") and hint in err, err


@pytest.mark.parametrize(
    ("toml", "hint"),
    [
        ('optimizer = "sgd"\nlr = 0.1\nmomentun = 0.9\nlambda_max = 4\n', "'momentum'"),
        ('optimizer = "sgd"\nalpha = 0.1\nbeta = 0.9\nlambda_max = 4\n', "lr = alpha"),
        ('optimizer = "heavy_ball"\nlr = 0.1\nlambda_max = 4\n', "momentum = beta"),
        ('optimizer = "sgd"\nlr = 0.1\nlamda_max = 4\n', "'lambda_max'"),
    ],
)
def test_config_files_get_the_close_match_and_the_vocabulary(toml, hint, tmp_path, capsys):
    (tmp_path / "run.toml").write_text(toml)
    code, _, err = run(["check", "--config", str(tmp_path / "run.toml")], capsys)
    assert code == 2 and hint in err, err


def test_the_python_api_suggests_too():
    with pytest.raises(stb.ConfigError, match=r"did you mean 'momentum'\?"):
        stb.check({"optimizer": "sgd", "lr": 0.1, "momentun": 0.9}, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match="lr = alpha and momentum = beta"):
        stb.check({"optimizer": "heavy_ball", "lr": 0.1}, lambda_max=1.0)
    with pytest.raises(stb.ConfigError, match=r"did you mean 'optax.sgd'\?"):
        stb.check({"optimizer": "optax.sdg", "learning_rate": 0.1}, lambda_max=1.0)


def test_the_shipped_config_runs_and_is_the_readme_one(capsys):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "examples" / "run.toml").read_text()
    assert text in (root / "README.md").read_text()
    code, out, err = run(["check", "--config", str(root / "examples" / "run.toml")], capsys)
    assert code == 0 and out.startswith("STABLE") and not err
