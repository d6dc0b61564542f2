"""Start-up and the parser tree: ``--version`` and ``--help`` load no heavy module, the lazy
parser lists the same commands as the full one, help text is plain text, and the completion
script covers the tree."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys

import pytest

from ibledger.cli import completion
from ibledger.cli.main import COMMANDS, build_parser

HEAVY = ("grpc", "cryptography", "plyvel", "google.protobuf", "ibledger.contracts")
_PROBE = """
import json, sys
from ibledger.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["no-such-command"]])
def test_start_up_imports_no_heavy_module(argv: list[str]) -> None:
    probe = _PROBE.format(argv=argv, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert loaded == [], f"ibledger {' '.join(argv)} imported {loaded}"


def _choices(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help for choice in action._choices_actions}
    raise AssertionError("no sub-commands")


def test_lazy_parser_lists_every_command_with_the_modules_help() -> None:
    lazy = _choices(build_parser(full=False))
    full = _choices(build_parser(full=True))
    assert lazy == full
    assert list(lazy) == [name for name, _, _ in COMMANDS]


def test_lazy_parser_parses_a_command_like_the_full_one() -> None:
    argv = ["-q", "validate", "isin", "US0378331005", "--json"]
    lazy = build_parser(full=False, argv=argv).parse_args(argv)
    full = build_parser(full=True).parse_args(argv)
    assert vars(lazy) == vars(full)
    assert lazy.quiet and lazy.json


# reStructuredText that argparse would print literally: ``literal``, :role:`target`, `x`_ links.
_RST = re.compile(r"``|:[a-z]+(:[a-z]+)?:`|`_\b|\.\. [a-z]+::|::$|^[-=~^]{3,}$", re.MULTILINE)


def test_help_text_has_no_restructuredtext_markup() -> None:
    problems = []
    for path, parser in completion.walk(build_parser(full=True)):
        where = " ".join(("ibledger", *path))
        texts = [("description", parser.description), ("epilog", parser.epilog)]
        texts.extend((", ".join(a.option_strings) or a.dest, a.help) for a in parser._actions)
        sub = completion._subparsers(parser)
        if sub is not None:
            texts.extend((choice.dest, choice.help) for choice in sub._choices_actions)
        for what, text in texts:
            if text and _RST.search(str(text)):
                problems.append(f"{where} {what}: {text!r}")
    assert not problems, "\n".join(problems)


def test_completion_script_names_every_verb_and_flag() -> None:
    script = completion.script(build_parser(full=True), "bash")
    assert "complete -o default -F _ibledger ibledger" in script
    for path, parser in completion.walk(build_parser(full=True)):
        if path:
            assert path[-1] in script
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in script, f"{' '.join(path)} {flag}"
    zsh = completion.script(build_parser(full=True), "zsh")
    assert "bashcompinit" in zsh


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ibledger bi", {"bill"}),
        ("ibledger bill iss", {"issue"}),
        ("ibledger --color ne", {"never"}),
        ("ibledger validate ", {"isin", "lei", "cfi"}),
        ("ibledger bill issue --as ICBC --jso", {"--json"}),
    ],
)
def test_bash_completion_completes(line: str, expected: set[str]) -> None:
    script = completion.script(build_parser(full=True), "bash")
    words = line.split(" ")
    program = (
        script
        + "COMP_WORDS=("
        + " ".join(f"'{w}'" for w in words)
        + f")\nCOMP_CWORD={len(words) - 1}\n_ibledger\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    )
    result = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert expected <= set(result.stdout.split()), result.stdout
