"""Every command in the README's shell blocks (``python -m stylegan_jax.<tool> ...``) is one its tool accepts: the
tool's own argument parser takes its flags and values, and each ``train`` command resolves to a config
(``--dry-run``: its experiment exists, every ``--config.KEY`` names a key of it and takes the value, the networks
build at the resolution it asks). Every ``--config.KEY`` the README's text names is a key of an experiment."""

import importlib
import re
import shlex
from pathlib import Path

import pytest

from stylegan_jax import train
from stylegan_jax.data.locate import resolve_dataset
from stylegan_jax.training.config import EXPERIMENTS_DIR, load_experiment, valid_keys

README = Path(__file__).resolve().parents[1] / "README.md"

#: The README's stand-ins for a user's own experiment file: their flags are parsed, the file is not read.
USER_EXPERIMENTS = {"experiments/my_exp.py"}

#: The README's stand-ins for a user's datasets whose commands take the resolution from the dataset (``auto``):
#: the built-in 16x16 digits under these names.
USER_DATASETS = ("mydata", "dogs")


def shell_blocks(text: str) -> list[str]:
    """The bodies of the fenced ``bash`` blocks of a Markdown text, line continuations joined."""
    blocks, body, language = [], None, ""
    for line in text.splitlines():
        if line.startswith("```"):
            if body is None:
                body, language = [], line[3:].strip()
            else:
                if language == "bash":
                    blocks.append("\n".join(body).replace("\\\n", " "))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def package_commands(text: str) -> list[tuple[str, list[str]]]:
    """(module, arguments) of every ``python -m stylegan_jax...`` command in the shell blocks, comments dropped,
    commands joined by ``&&`` taken one by one."""
    commands = []
    for block in shell_blocks(text):
        for line in block.splitlines():
            words: list[str] = []
            for word in [*shlex.split(line, comments=True), "&&"]:
                if word not in ("&&", "||", ";", "|"):
                    words.append(word)
                    continue
                if len(words) > 2 and words[0] in ("python", "python3") and words[1] == "-m" and \
                        words[2].startswith("stylegan_jax"):
                    commands.append((words[2], words[3:]))
                words = []
    return commands


COMMANDS = package_commands(README.read_text())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A dataset directory holding the built-in digits at 16x16 under each of `USER_DATASETS`' names."""
    path = tmp_path_factory.mktemp("datasets")
    resolve_dataset("digits-16", data_dir=path)
    for name in USER_DATASETS:
        (path / name).symlink_to(path / "digits-16", target_is_directory=True)
    return path


def test_the_readme_gives_a_command_of_every_tool():
    """The extraction finds the README's commands (a change of its fences would otherwise leave nothing to
    check)."""
    assert {module for module, _ in COMMANDS} == {
        "stylegan_jax.train", "stylegan_jax.dataset_tool", "stylegan_jax.generate", "stylegan_jax.style_mixing",
        "stylegan_jax.gen_video", "stylegan_jax.projector", "stylegan_jax.calc_metrics", "stylegan_jax.avg_spectra"}
    assert ("stylegan_jax.train", ["--experiment", "quickstart"]) in COMMANDS


@pytest.mark.parametrize("module, args", COMMANDS, ids=[" ".join([m.split(".")[-1], *a])[:80] for m, a in COMMANDS])
def test_a_readme_command_is_accepted(module, args, data_dir, capsys):
    if module != "stylegan_jax.train":
        importlib.import_module(module).parse_args(args)
        return
    experiment = args[args.index("--experiment") + 1]
    if experiment in USER_EXPERIMENTS:
        train.parse_args(args)
        return
    assert train.main([*args, "--dry-run", f"--config.data_dir={data_dir}"]) == 0, capsys.readouterr().err
    assert '"model"' in capsys.readouterr().out  # the resolved config


def test_every_config_key_the_readme_names_is_a_key_of_an_experiment():
    named = set(re.findall(r"--config\.([A-Za-z_][\w.]*\w)", README.read_text())) - {"KEY"}
    experiments = [p.relative_to(EXPERIMENTS_DIR).with_suffix("").as_posix() for p in EXPERIMENTS_DIR.rglob("*.py")
                   if not any(part.startswith("_") for part in p.relative_to(EXPERIMENTS_DIR).parts)]
    keys = {key for name in experiments for key in valid_keys(load_experiment(name))}
    assert len(named) > 20 and named <= keys, sorted(named - keys)
