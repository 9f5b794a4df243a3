"""A broken experiment file is one line ``train: error: FILE:LINE: ...`` and exit status 1, never a traceback."""

import textwrap

import pytest

from stylegan_jax import train

HEADER = '"""An experiment."""\n\nfrom stylegan_jax.training.config import load_experiment, stylegan2_defaults\n\n'

# (file body after HEADER; the line the error names (the header is lines 1-4); the message after "FILE:LINE: ")
CASES = {
    "syntax_error": ("def get_config(:\n    return stylegan2_defaults()\n", 5, "SyntaxError: "),
    "indentation_error": ("def get_config():\nreturn stylegan2_defaults()\n", 6, "IndentationError: "),
    "import_time_error": ("import no_such_module_here  # noqa\n", 5,
                          "ModuleNotFoundError: No module named 'no_such_module_here'"),
    "get_config_raises": ("def get_config():\n    c = stylegan2_defaults()\n    raise RuntimeError('no dataset "
                          "chosen')\n", 7, "get_config() raised RuntimeError: no dataset chosen"),
    "get_config_raises_deeper": ("def get_config():\n    c = stylegan2_defaults()\n    c.G.no_such_key += 1\n"
                                 "    return c\n", 7, "get_config() raised AttributeError: "),
    "multiline_message": ("def get_config():\n    raise ValueError('first\\nsecond')\n", 6,
                          "get_config() raised ValueError: first second"),
    "empty_message": ("def get_config():\n    raise LookupError()\n", 6,
                      "get_config() raised LookupError"),
    "returns_a_dict": ("def get_config():\n    return {'name': 'x'}\n", 5,
                       "get_config() returned dict; expected an ml_collections.ConfigDict"),
    "returns_none": ("\n\ndef get_config():\n    c = stylegan2_defaults()\n", 7,
                     "get_config() returned NoneType; expected an ml_collections.ConfigDict"),
}


def run_train(capsys, *args):
    status = train.main([*args, "--dry-run"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line(err, prefix, message):
    """``err`` is one line: ``prefix`` then the message, which starts with ``message``."""
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(prefix + message), err


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_experiment_file_is_one_line_naming_file_and_line(case, tmp_path, capsys):
    body, line, tail = CASES[case]
    path = tmp_path / f"{case}.py"
    path.write_text(HEADER + body)
    status, out, err = run_train(capsys, "--experiment", str(path))
    assert status == 1 and out == ""
    assert_one_line(err, f"train: error: {path}:{line}: ", tail)


def test_an_experiment_loading_a_broken_one_names_the_broken_file(tmp_path, capsys):
    """An ablation rung loads the previous rung by path: the error names the rung that is broken."""
    (tmp_path / "rung_a.py").write_text(HEADER + "def get_config():\n    return stylegan2_defaults().to_dict()\n")
    (tmp_path / "rung_b.py").write_text(HEADER + textwrap.dedent("""\
        from pathlib import Path


        def get_config():
            return load_experiment(str(Path(__file__).with_name("rung_a.py")))
        """))
    status, _, err = run_train(capsys, "--experiment", str(tmp_path / "rung_b.py"))
    assert status == 1
    assert_one_line(err, f"train: error: {tmp_path / 'rung_a.py'}:5: ", "get_config() returned dict;")


def test_an_experiment_loading_a_missing_one_names_its_line(tmp_path, capsys):
    path = tmp_path / "rung_b.py"
    path.write_text(HEADER + "def get_config():\n    return load_experiment('no_such_experiment_here')\n")
    status, _, err = run_train(capsys, "--experiment", str(path))
    assert status == 1
    assert_one_line(err, f"train: error: {path}:6: ", "get_config() raised ConfigError: --experiment: unknown "
                    "experiment 'no_such_experiment_here'")


def test_an_experiment_without_get_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "empty.py"
    path.write_text(HEADER + "get_config = 3\n")
    status, _, err = run_train(capsys, "--experiment", str(path))
    assert status == 1
    assert_one_line(err, f"train: error: {path}: ", "an experiment file must define get_config()")


def test_unknown_experiment_names_the_ablation_rungs_too(capsys):
    status, _, err = run_train(capsys, "--experiment", "nope")
    assert status == 1
    assert_one_line(err, "train: error: --experiment: unknown experiment 'nope'; ", "expected one of [")
    assert "'ablations/stylegan2_c'" in err and "'quickstart'" in err
    assert "_stylegan2_base" not in err


def test_a_good_experiment_file_still_loads(tmp_path, capsys):
    path = tmp_path / "good.py"
    path.write_text(HEADER + "def get_config():\n    c = load_experiment('quickstart')\n    c.name = 'good'\n"
                    "    return c\n")
    status, out, err = run_train(capsys, "--experiment", str(path))
    assert status == 0, err
    assert '"name": "good"' in out


def test_a_relative_path_is_named_as_given_with_the_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for case in ("syntax_error", "get_config_raises", "returns_a_dict"):
        body, line, message = CASES[case]
        (tmp_path / f"{case}.py").write_text(HEADER + body)
        status, _, err = run_train(capsys, "--experiment", f"{case}.py")
        assert status == 1
        assert_one_line(err, f"train: error: {case}.py:{line}: ", message)
