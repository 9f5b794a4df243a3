"""Running a tool in-process on bad input and checking the project's contract: exit status 1, one line
``<tool>: error: ...`` on stderr, no traceback, nothing on stdout, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def run_tool(main: Callable[[list[str]], int], argv: list, capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``main(argv)``; argparse's exit counts as the status."""
    capsys.readouterr()  # what fixtures printed is not the tool's
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def listing(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root``: (is a directory, size, mtime in ns); equal before and after a refused run
    when it wrote, replaced and deleted nothing."""
    return {p.relative_to(root).as_posix(): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def assert_one_error_line(prog: str, code: int, out: str, err: str, expected: str) -> None:
    """The contract: status 1, stderr exactly one non-empty line ``<prog>: error: ...`` holding ``expected``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert out == "", out


def expect_usage_error(prog: str, main: Callable[[list[str]], int], argv: list, expected: str, root: Path,
                       capsys) -> str:
    """Runs ``main(argv)`` and checks the contract and that nothing under ``root`` changed; returns the line."""
    before = listing(root)
    code, out, err = run_tool(main, argv, capsys)
    assert_one_error_line(prog, code, out, err, expected)
    assert listing(root) == before
    return err.strip()
