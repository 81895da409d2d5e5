"""Running git: the environment every command gets, its input, and failures that are not git's answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.errors import InvalidInput
from backend.git import GitCommandFailed
from backend.git.commands import output, output_text, run

REPOSITORY = Path(__file__).resolve().parents[2]


def command_env(folder: Path, **env: str) -> dict[str, str]:
    """The environment a git command runs with, as git's own alias mechanism shows it."""
    out = output_text(folder, "-c", "alias.showenv=!env", "showenv", env=env)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_commands_never_prompt_never_take_optional_locks_and_speak_plain_english(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("KANBAN_TEST_MARKER", "inherited")
    env = command_env(repo, GIT_AUTHOR_NAME="Per Command")
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_OPTIONAL_LOCKS"] == "0"
    assert (env["LC_ALL"], env["LANGUAGE"]) == ("C", "C")
    assert env["KANBAN_TEST_MARKER"] == "inherited"  # the rest of the environment is kept
    assert env["GIT_AUTHOR_NAME"] == "Per Command"


def test_commands_read_no_input(repo: Path) -> None:
    # With the server's standard input inherited this would wait for it; git sees an empty one.
    assert output_text(repo, "hash-object", "--stdin") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_run_reports_the_status_and_output_raises(repo: Path) -> None:
    status, out, err = run(repo, "rev-parse", "--verify", "--quiet", "no-such-branch")
    assert (status, out, err) == (1, b"", "")
    status, out, err = run(repo, "no-such-command")
    assert status != 0 and "no-such-command" in err and not err.endswith("\n")
    with pytest.raises(
        GitCommandFailed, match=r"git no-such-command failed in .*my project: .*no-such-command"
    ) as caught:
        output(repo, "no-such-command")
    assert caught.value.status_code == 500
    assert output(repo, "cat-file", "-p", "HEAD:README.md") == b"# Project\n"  # raw bytes, newline kept


def test_a_missing_folder_is_invalid_input_and_git_never_runs_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        run(tmp_path / "missing", "status")
    file = tmp_path / "a file"
    file.write_text("x")
    with pytest.raises(InvalidInput, match="does not exist"):
        run(file, "status")


def test_without_git_on_path_commands_fail_with_a_message(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GitCommandFailed, match="git is not installed"):
        run(repo, "status")


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(
    SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv to drop the file-access override"
)
def test_a_folder_the_server_may_not_open_is_invalid_input(tmp_path: Path) -> None:
    # Root opens every folder; a child without CAP_DAC_OVERRIDE meets one it may see but not enter.
    locked = tmp_path / "private"
    locked.mkdir(mode=0o000)
    check = (
        "import sys\n"
        "from backend.errors import InvalidInput\n"
        "from backend.git import is_git_repository\n"
        "try:\n"
        "    print(is_git_repository(sys.argv[1]))\n"
        "except InvalidInput as exc:\n"
        "    print(exc.message)\n"
    )
    try:
        done = subprocess.run(
            [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-c", check, str(locked)],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
        )
    finally:
        locked.chmod(0o700)
    assert done.stdout.strip() == f"the server may not open folder {str(locked)!r} (permission denied)", done.stderr
