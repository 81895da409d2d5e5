"""Diffs against real git: statuses, renames, binary files, line caps, configuration that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import InvalidInput
from backend.git import MAX_DIFF_LINES_PER_FILE, commit_all, diff, diffs
from tests.git.helpers import commit, git, new_worktree, write


@pytest.fixture
def diff_repo(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "diff repo"
    folder.mkdir()
    git(folder, "init", "--quiet", "-b", "main")
    write(folder / "modify.txt", "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n")
    write(folder / "delete.txt", "gone\nsoon\n")
    write(folder / "old name.txt", "".join(f"stable line {n}\n" for n in range(20)))
    write(folder / "image.bin", bytes(range(256)) * 4)
    write(folder / "tail.txt", "first\nlast")
    base = commit(folder, "base")
    write(folder / "modify.txt", "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n")
    (folder / "delete.txt").unlink()
    (folder / "old name.txt").rename(folder / "new näme.txt")
    write(folder / "new näme.txt", (folder / "new näme.txt").read_text() + "one more\n")
    write(folder / "image.bin", bytes(reversed(range(256))) * 4)
    write(folder / "tail.txt", "first\nlast\n")
    write(folder / "dir with space" / "added file.md", "hello\nworld")
    write(folder / "empty.txt", "")
    write(folder / "crlf.txt", "a\r\nb\r\n")
    write(folder / 'odd "quoted"\tname.txt', "odd\n")
    head = commit(folder, "head")
    return folder, base, head


def test_diff_shapes(diff_repo: tuple[Path, str, str]) -> None:
    folder, base, head = diff_repo
    result = diff(folder, base, "HEAD")
    assert (result["base"], result["head"]) == (base, head)
    files = {item["path"]: item for item in result["files"]}
    assert set(files) == {
        "modify.txt", "delete.txt", "new näme.txt", "image.bin", "tail.txt",
        "dir with space/added file.md", "empty.txt", "crlf.txt", 'odd "quoted"\tname.txt',
    }  # fmt: skip
    for item in result["files"]:
        assert set(item) == {"path", "old_path", "status", "additions", "deletions", "binary", "truncated", "hunks"}
        assert item["truncated"] is False

    modified = files["modify.txt"]
    assert (modified["status"], modified["old_path"]) == ("modified", None)
    assert (modified["additions"], modified["deletions"], modified["binary"]) == (2, 1, False)
    assert [hunk["header"] for hunk in modified["hunks"]] == ["@@ -1,6 +1,6 @@", "@@ -8,3 +8,4 @@ seven"]
    lines = modified["hunks"][0]["lines"]
    assert len(lines) == 7
    assert lines[:4] == [
        {"type": "context", "old": 1, "new": 1, "text": "one"},
        {"type": "context", "old": 2, "new": 2, "text": "two"},
        {"type": "del", "old": 3, "new": None, "text": "three"},
        {"type": "add", "old": None, "new": 3, "text": "THREE"},
    ]
    assert modified["hunks"][1]["lines"] == [
        {"type": "context", "old": 8, "new": 8, "text": "eight"},
        {"type": "context", "old": 9, "new": 9, "text": "nine"},
        {"type": "context", "old": 10, "new": 10, "text": "ten"},
        {"type": "add", "old": None, "new": 11, "text": "eleven"},
    ]

    deleted = files["delete.txt"]
    assert (deleted["status"], deleted["additions"], deleted["deletions"]) == ("deleted", 0, 2)
    assert [line["type"] for line in deleted["hunks"][0]["lines"]] == ["del", "del"]
    assert deleted["hunks"][0]["header"].startswith("@@ -1,2 +0,0 @@")

    renamed = files["new näme.txt"]
    assert (renamed["status"], renamed["old_path"]) == ("renamed", "old name.txt")
    assert (renamed["additions"], renamed["deletions"]) == (1, 0)
    assert renamed["hunks"][0]["lines"][-1] == {"type": "add", "old": None, "new": 21, "text": "one more"}

    binary = files["image.bin"]
    assert (binary["binary"], binary["hunks"], binary["additions"], binary["deletions"]) == (True, [], 0, 0)

    tail = files["tail.txt"]
    assert tail["hunks"][0]["lines"] == [
        {"type": "context", "old": 1, "new": 1, "text": "first"},
        {"type": "del", "old": 2, "new": None, "text": "last", "no_newline": True},
        {"type": "add", "old": None, "new": 2, "text": "last"},
    ]

    added = files["dir with space/added file.md"]
    assert (added["status"], added["additions"], added["deletions"]) == ("added", 2, 0)
    assert added["hunks"][0]["lines"][-1] == {"type": "add", "old": None, "new": 2, "text": "world", "no_newline": True}

    empty = files["empty.txt"]
    assert (empty["status"], empty["hunks"], empty["additions"], empty["binary"]) == ("added", [], 0, False)

    assert [line["text"] for line in files["crlf.txt"]["hunks"][0]["lines"]] == ["a\r", "b\r"]

    odd = files['odd "quoted"\tname.txt']
    assert odd["hunks"][0]["lines"] == [{"type": "add", "old": None, "new": 1, "text": "odd"}]

    assert result["stats"] == {
        "files": 9,
        "additions": sum(item["additions"] for item in result["files"]),
        "deletions": sum(item["deletions"] for item in result["files"]),
    }
    assert result["stats"]["additions"] == 2 + 1 + 1 + 2 + 2 + 1 and result["stats"]["deletions"] == 1 + 2 + 1
    assert result["truncated"] is False


def test_diff_per_file_fallback_gives_the_same_result(
    diff_repo: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, base, head = diff_repo
    expected = diff(folder, base, head)
    monkeypatch.setattr(diffs, "_match_sections", lambda entries, sections: None)
    assert diff(folder, base, head) == expected


def test_diff_ignores_diff_configuration(diff_repo: tuple[Path, str, str], hermetic_git: Path) -> None:
    folder, base, head = diff_repo
    expected = diff(folder, base, head)
    hermetic_git.write_text(
        "[diff]\n\tnoprefix = true\n\tsuppressBlankEmpty = true\n\trenames = false\n\tsubmodule = log\n"
        "[color]\n\tdiff = always\n\tui = always\n[core]\n\tquotePath = true\n"
    )
    assert diff(folder, base, head) == expected


def test_diff_without_changes_and_with_bad_commits(diff_repo: tuple[Path, str, str]) -> None:
    folder, base, head = diff_repo
    assert diff(folder, head, head)["files"] == []
    assert diff(folder, head, head)["stats"] == {"files": 0, "additions": 0, "deletions": 0}
    with pytest.raises(InvalidInput, match="does not exist"):
        diff(folder, base, "0" * 40)


def test_diff_type_change_and_large_files(tmp_path: Path) -> None:
    folder = tmp_path / "large"
    folder.mkdir()
    git(folder, "init", "--quiet", "-b", "main")
    write(folder / "target.txt", "target\n")
    write(folder / "link", "was a file\n")
    write(folder / "small.txt", "a\n")
    base = commit(folder, "base")
    (folder / "link").unlink()
    (folder / "link").symlink_to("target.txt")
    write(folder / "huge.txt", "".join(f"line {n}\n" for n in range(2_500)))
    write(folder / "small.txt", "a\nb\n")
    head = commit(folder, "head")

    result = diff(folder, base, head)
    files = {item["path"]: item for item in result["files"]}
    assert list(files) == ["huge.txt", "link", "small.txt"]
    link = files["link"]
    assert link["status"] == "modified"
    assert [(line["type"], line["text"]) for hunk in link["hunks"] for line in hunk["lines"]] == [
        ("del", "was a file"),
        ("add", "target.txt"),
    ]
    huge = files["huge.txt"]
    assert huge["truncated"] is True and huge["additions"] == 2_500
    assert sum(len(hunk["lines"]) for hunk in huge["hunks"]) == MAX_DIFF_LINES_PER_FILE
    assert files["small.txt"]["hunks"][0]["lines"][-1] == {"type": "add", "old": None, "new": 2, "text": "b"}
    assert result["truncated"] is True


def test_diff_of_a_task_worktree(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "feature.py", "x = 1\n")
    head = commit_all(tree.path, "feature")
    result = diff(repo, tree.base_commit, head)
    assert [(item["path"], item["status"]) for item in result["files"]] == [("feature.py", "added")]
