"""The README's set-up commands and CI stay in sync."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up")[1].split("\n## ")[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(blocks) == 2, "the README must have exactly two set-up commands"
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
                if ln and not ln.startswith(("#", "set ", "cd ", "export "))]
    assert ci_lines == [blocks[1].strip()]
    assert "pytest" in blocks[1] and "lightbunny" in blocks[0]


# ------------------------------------------------------------------ every README command block
def _readme_commands():
    """``(line, argv)`` of every lightbunny command in the README's ```bash blocks.

    ``argv`` is what follows ``lightbunny`` (or ``-m lightbunny.cli``), comments removed; a
    bare ``lightbunny`` counts only as a command's first word (``ruff check lightbunny`` is
    not a lightbunny command)."""
    import shlex

    out = []
    for block in re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                for k, w in enumerate(words):
                    if w.endswith("bin/lightbunny") or (w == "lightbunny" and k == 0) or (
                            w == "lightbunny.cli" and k and words[k - 1] == "-m"):
                        out.append((line.strip(), words[k + 1:]))
                        break
    return out


def _subparsers():
    import argparse

    from lightbunny.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, action.choices


def test_readme_commands_run_in_a_fresh_shell():
    """No README command relies on an activated virtual environment: each calls
    ``.venv/bin/...`` (a fresh shell after the set-up command has no ``lightbunny`` on PATH)."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```bash\n(.*?)\n```", text, re.S):
        for line in block.splitlines():
            first = line.split("#")[0].split()
            if first and first[0] in ("lightbunny", "torchrun", "python", "pytest"):
                raise AssertionError(f"README line needs an activated venv: {line!r}")


def test_every_readme_subcommand_and_flag_exists():
    """Each subcommand and --flag of each README command is known to the real parser; a
    command without placeholders (``...``, ``[...]``, upper-case names) parses completely."""
    parser, subs = _subparsers()
    commands = _readme_commands()
    assert len(commands) >= 15, commands  # the set-up, stage-by-stage, run, atlas and apply blocks
    for line, argv in commands:
        assert argv and argv[0] in subs, f"unknown subcommand in README: {line!r}"
        known = {s for a in subs[argv[0]]._actions for s in a.option_strings}
        for word in argv[1:]:
            flag = word.strip("[]").split("=")[0]
            if flag.startswith("--"):
                assert flag in known, f"{argv[0]} has no option {flag} (README: {line!r})"
        if not any("..." in w or "[" in w or re.fullmatch(r"[A-Z]+", w) for w in argv):
            try:
                parser.parse_args(argv)
            except SystemExit as err:  # argparse reports bad values by exiting
                raise AssertionError(f"README command does not parse: {line!r}") from err


def test_readme_train_command_states_its_epochs():
    """The README's train command says how many epochs it runs (the default is 50)."""
    _, subs = _subparsers()
    default = next(a.default for a in subs["train"]._actions if "--epochs" in a.option_strings)
    text = (ROOT / "README.md").read_text()
    trains = [line for line, argv in _readme_commands() if argv[:1] == ["train"] and
              "..." not in line]
    assert trains and all("--epochs" in line for line in trains)
    assert f"`train` defaults to {default} epochs" in text  # and the default is named


def test_cheap_readme_commands_run(capsys, one_thread):
    """The cheap commands run as written (the atlas summary, help of every subcommand)."""
    from lightbunny.cli import main

    commands = [argv for _, argv in _readme_commands()]
    assert ["atlas", "tvb76"] in commands
    assert main(["atlas", "tvb76"]) == 0
    assert "Atlas tvb76: 76 regions" in capsys.readouterr().out
    _, subs = _subparsers()
    for name in {argv[0] for argv in commands}:
        text = subs[name].format_help()
        # every option with a value shows its default
        for action in subs[name]._actions:
            if action.option_strings and action.nargs != 0 and not action.required \
                    and action.dest != "help":
                assert "default" in (subs[name]._get_formatter()._get_help_string(action)
                                     or "").lower(), f"{name} {action.option_strings}"
        assert text


def test_long_commands_have_no_progress():
    _, subs = _subparsers()
    for name in ("fetch", "simulate", "sources", "train", "evaluate", "run", "quickstart"):
        assert any("--no-progress" in a.option_strings for a in subs[name]._actions), name
