"""Task workspaces against real git repositories: init, branches, worktrees, commits, diffs, merges."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.errors import Conflict, InvalidInput, NotFound
from backend.runs import workspace
from backend.runs.workspace import (
    MergeResult,
    branch_exists,
    branch_name,
    commit_all,
    current_branch,
    diff,
    ensure_worktree,
    head_commit,
    init_repository,
    is_git_repository,
    merge_into_base,
    remove_worktree,
    worktree_is_clean,
)

TEST_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Person",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test Person",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def hermetic_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No global or system git configuration and no identity: every test sees a bare git."""
    global_config = tmp_path / "global gitconfig"
    global_config.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(global_config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for variable in (*TEST_IDENTITY, "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "EMAIL"):
        monkeypatch.delenv(variable, raising=False)
    return global_config


def git(cwd: Path | str, *args: str) -> str:
    """Test-side git (its own identity, so the code under test never borrows it)."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **TEST_IDENTITY}, capture_output=True, text=True, check=True
    )
    return result.stdout


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode())
    return path


def commit(cwd: Path, message: str = "change") -> str:
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


def rev(cwd: Path, revision: str) -> str:
    return git(cwd, "rev-parse", revision).strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project folder with spaces in its path, on `main`, with one commit."""
    folder = tmp_path / "my project"
    folder.mkdir()
    git(folder, "init", "--quiet", "-b", "main")
    write(folder / "README.md", "# Project\n")
    write(folder / "src" / "app.py", "print('hello')\n")
    write(folder / ".gitignore", ".env\nnode_modules/\n*.log\n")
    write(folder / ".env", "SECRET=1\n")
    commit(folder, "Initial")
    return folder


@pytest.fixture
def worktree_root(tmp_path: Path) -> Path:
    return tmp_path / "work trees"


def new_worktree(repo: Path, worktree_root: Path, title: str = "Fix the login", copy_files=()) -> workspace.Worktree:
    branch = branch_name("KAN-1", title)
    return ensure_worktree(repo, worktree_root / "KAN-1", branch, "main", list(copy_files))


def snapshot(folder: Path) -> dict:
    """Everything a user could notice: files (bytes), HEAD, refs, index, status, worktrees."""
    git_dir = folder / git(folder, "rev-parse", "--git-dir").strip()
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if ".git" not in path.relative_to(folder).parts and path.is_file()
    }
    return {
        "files": files,
        "head": git(folder, "rev-parse", "--symbolic-full-name", "HEAD"),
        "head_commit": rev(folder, "HEAD"),
        "refs": git(folder, "for-each-ref", "--format=%(refname) %(objectname)"),
        "index": git(folder, "ls-files", "--stage"),
        "status": git(folder, "status", "--porcelain=v2", "--branch", "--untracked-files=all"),
        "worktrees": git(folder, "worktree", "list", "--porcelain"),
        "git_files": sorted(path.name for path in git_dir.iterdir() if path.is_file()),
    }


# --- init -----------------------------------------------------------------------------------


def test_init_commits_a_plain_folder(tmp_path: Path, hermetic_git: Path) -> None:
    folder = tmp_path / "plain folder"
    write(folder / "notes.txt", "hello\n")
    write(folder / "sub dir" / "é.md", "accent\n")
    write(folder / ".gitignore", "*.log\n")
    write(folder / "debug.log", "noise\n")
    assert not is_git_repository(folder)

    head = init_repository(folder, "trunk")

    assert is_git_repository(folder)
    assert head == head_commit(folder)
    assert git(folder, "symbolic-ref", "--short", "HEAD").strip() == "trunk"
    assert git(folder, "log", "-1", "--format=%s|%an <%ae>|%cn <%ce>").strip() == (
        "Initial commit|Kanban Orchestrator <kanban@localhost>|Kanban Orchestrator <kanban@localhost>"
    )
    tracked = git(folder, "-c", "core.quotePath=false", "ls-files").split("\n")
    assert sorted(filter(None, tracked)) == [".gitignore", "notes.txt", "sub dir/é.md"]
    assert git(folder, "status", "--porcelain") == ""
    assert hermetic_git.read_text() == ""  # no identity written to the global configuration
    assert "[user]" not in (folder / ".git" / "config").read_text()


def test_init_an_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    head = init_repository(folder, "main")
    assert git(folder, "log", "--format=%H %s").strip() == f"{head} Initial commit"
    assert git(folder, "ls-tree", "-r", "HEAD") == ""
    local_config = (folder / ".git" / "config").read_text()
    assert "Kanban" not in local_config and "[user]" not in local_config


def test_init_keeps_a_configured_identity(tmp_path: Path, hermetic_git: Path) -> None:
    hermetic_git.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n")
    folder = tmp_path / "mine"
    write(folder / "a.txt", "a\n")
    init_repository(folder, "main")
    assert git(folder, "log", "-1", "--format=%an <%ae>").strip() == "Ada Lovelace <ada@example.com>"


def test_init_refusals(tmp_path: Path, repo: Path) -> None:
    with pytest.raises(Conflict, match="already a git repository"):
        init_repository(repo, "main")
    with pytest.raises(InvalidInput, match="does not exist"):
        init_repository(tmp_path / "nowhere", "main")
    folder = tmp_path / "bad branch"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="not a valid git branch name"):
        init_repository(folder, "bad..name")
    assert not (folder / ".git").exists()


def test_is_git_repository(tmp_path: Path, repo: Path, worktree_root: Path) -> None:
    assert is_git_repository(repo)
    assert not is_git_repository(repo / "src")  # inside a repository is not the repository
    assert not is_git_repository(tmp_path / "missing")
    assert not is_git_repository(tmp_path)
    assert is_git_repository(new_worktree(repo, worktree_root).path)


def test_current_branch_and_branch_exists(tmp_path: Path, repo: Path) -> None:
    assert current_branch(repo) == "main"
    assert branch_exists(repo, "main")
    assert not branch_exists(repo, "develop")
    assert not branch_exists(repo, "bad..name")
    git(repo, "switch", "--quiet", "--detach")
    assert current_branch(repo) is None
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "--quiet", "-b", "trunk")
    assert current_branch(fresh) == "trunk"
    assert not branch_exists(fresh, "trunk")  # no commit yet


# --- branch names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("short_id", "title", "expected"),
    [
        ("KAN-12", "Fix the login form", "kanban/kan-12-fix-the-login-form"),
        ("KAN-3", "Crème brûlée: Straße über Øresund", "kanban/kan-3-creme-brulee-strasse-uber-oresund"),
        ("KAN-4", "修复登录", "kanban/kan-4-task"),
        ("KAN-5", "?!... --- ///", "kanban/kan-5-task"),
        ("KAN-6", "", "kanban/kan-6-task"),
        ("KAN-7", "  .lock refs/heads/x @{1} ~^: *[evil]\\ ", "kanban/kan-7-lock-refs-heads-x-1-evil"),
        ("KAN-8", "feature.lock", "kanban/kan-8-feature-lock"),
        ("Kan-9", "Émoji 🚀 launch", "kanban/kan-9-emoji-launch"),
    ],
)
def test_branch_name(short_id: str, title: str, expected: str) -> None:
    name = branch_name(short_id, title)
    assert name == expected
    subprocess.run(["git", "check-ref-format", "--branch", name], check=True, capture_output=True)


def test_branch_name_shortens_long_titles() -> None:
    title = "Implement the very long feature description that keeps going and going forever"
    name = branch_name("KAN-100", title)
    slug = name.removeprefix("kanban/kan-100-")
    assert 0 < len(slug) <= workspace.SLUG_MAX_LENGTH
    assert not slug.endswith("-")
    assert title.lower().replace(" ", "-").startswith(slug)  # cut at a word boundary
    unbroken = branch_name("KAN-101", "x" * 300)
    assert unbroken == "kanban/kan-101-" + "x" * workspace.SLUG_MAX_LENGTH
    for candidate in (name, unbroken):
        subprocess.run(["git", "check-ref-format", "--branch", candidate], check=True, capture_output=True)


# --- worktrees -------------------------------------------------------------------------------


def test_ensure_worktree_creates_branch_and_copies_files(repo: Path, worktree_root: Path) -> None:
    write(repo / "config" / "local.json", '{"debug": true}\n')
    base = rev(repo, "main")

    tree = new_worktree(repo, worktree_root, copy_files=[".env", "config/local.json", "missing.txt", ".env"])

    path = Path(tree.path)
    assert path == worktree_root / "KAN-1"
    assert tree.branch == "kanban/kan-1-fix-the-login"
    assert tree.base_commit == base
    assert tree.created
    assert tree.copied == [".env", "config/local.json"]
    assert tree.missing == ["missing.txt"]
    assert (path / "src" / "app.py").read_text() == "print('hello')\n"
    assert (path / ".env").read_text() == "SECRET=1\n"
    assert (path / "config" / "local.json").read_text() == '{"debug": true}\n'
    assert git(path, "symbolic-ref", "--short", "HEAD").strip() == tree.branch
    assert rev(repo, tree.branch) == base
    assert git(repo, "status", "--porcelain") == "?? config/\n"  # the main checkout is untouched


def test_ensure_worktree_reuses_an_existing_worktree(repo: Path, worktree_root: Path) -> None:
    first = new_worktree(repo, worktree_root, copy_files=[".env"])
    path = Path(first.path)
    write(path / ".env", "SECRET=changed in the worktree\n")
    write(path / "work in progress.txt", "half done\n")
    write(repo / "later.txt", "new in main\n")
    commit(repo, "main moves on")
    write(repo / "local.toml", "debug = true\n")

    second = new_worktree(repo, worktree_root, copy_files=[".env", "local.toml"])

    assert not second.created
    assert (second.path, second.branch, second.base_commit) == (first.path, first.branch, first.base_commit)
    assert (path / ".env").read_text() == "SECRET=changed in the worktree\n"  # not copied over
    assert (path / "work in progress.txt").read_text() == "half done\n"
    assert not (path / "later.txt").exists()
    assert second.copied == ["local.toml"]


@pytest.mark.parametrize(
    "entry", ["../outside.txt", "config/../../x", "/etc/passwd", "", ".git/config", "C:\\x", "\\x"]
)
def test_ensure_worktree_refuses_paths_outside_the_repository(repo: Path, worktree_root: Path, entry: str) -> None:
    with pytest.raises(InvalidInput, match="copy_files"):
        new_worktree(repo, worktree_root, copy_files=[entry])
    assert not (worktree_root / "KAN-1").exists()
    assert git(repo, "branch", "--list", "kanban/*") == ""


def test_ensure_worktree_reuses_an_existing_branch(repo: Path, worktree_root: Path) -> None:
    branch = branch_name("KAN-1", "Fix the login")
    git(repo, "branch", branch)
    git(repo, "switch", "--quiet", branch)
    write(repo / "earlier.txt", "from a previous run\n")
    fork_point = rev(repo, "main")
    branch_head = commit(repo, "earlier work")
    git(repo, "switch", "--quiet", "main")

    tree = ensure_worktree(repo, worktree_root / "KAN-1", branch, "main", [])

    assert tree.created and tree.base_commit == fork_point
    assert head_commit(tree.path) == branch_head
    assert (Path(tree.path) / "earlier.txt").exists()


def test_ensure_worktree_recreates_a_deleted_worktree(repo: Path, worktree_root: Path) -> None:
    first = new_worktree(repo, worktree_root)
    shutil.rmtree(first.path)
    second = new_worktree(repo, worktree_root)
    assert second.created and Path(second.path, "README.md").exists()


def test_ensure_worktree_errors(tmp_path: Path, repo: Path, worktree_root: Path) -> None:
    with pytest.raises(InvalidInput, match=f"base branch 'develop' does not exist in {repo}"):
        ensure_worktree(repo, worktree_root / "a", "kanban/a", "develop", [])

    empty = tmp_path / "no commits"
    empty.mkdir()
    git(empty, "init", "--quiet", "-b", "main")
    with pytest.raises(InvalidInput, match="no commits"):
        ensure_worktree(empty, worktree_root / "b", "kanban/b", "main", [])

    with pytest.raises(InvalidInput, match="not a git repository"):
        ensure_worktree(tmp_path, worktree_root / "c", "kanban/c", "main", [])
    with pytest.raises(InvalidInput, match="inside the git repository"):
        ensure_worktree(repo / "src", worktree_root / "c", "kanban/c", "main", [])

    occupied = worktree_root / "occupied"
    write(occupied / "something.txt", "mine\n")
    with pytest.raises(Conflict, match="already exists"):
        ensure_worktree(repo, occupied, "kanban/d", "main", [])
    assert (occupied / "something.txt").read_text() == "mine\n"

    git(repo, "switch", "--quiet", "-c", "kanban/checked-out")
    with pytest.raises(Conflict, match="already checked out"):
        ensure_worktree(repo, worktree_root / "e", "kanban/checked-out", "main", [])

    with pytest.raises(InvalidInput, match="not a valid git branch name"):
        ensure_worktree(repo, worktree_root / "f", "bad name", "main", [])


# --- commits ---------------------------------------------------------------------------------


def test_commit_all_stages_everything_but_ignored_files(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root, copy_files=[".env"])
    path = Path(tree.path)
    assert commit_all(path, "nothing yet") is None
    assert worktree_is_clean(path)

    write(path / "new file.txt", "new\n")
    write(path / "README.md", "# Project\n\nMore.\n")
    (path / "src" / "app.py").unlink()
    write(path / "node_modules" / "dep.js", "ignored\n")
    write(path / "run.log", "ignored\n")
    write(path / ".env", "SECRET=2\n")
    assert not worktree_is_clean(path)

    sha = commit_all(path, "Agent work: first pass")

    assert sha == head_commit(path) == rev(repo, tree.branch)
    assert git(path, "log", "-1", "--format=%s|%an").strip() == "Agent work: first pass|Kanban Orchestrator"
    changes = git(path, "show", "--name-status", "--format=", "HEAD").split("\n")
    assert sorted(filter(None, changes)) == ["A\tnew file.txt", "D\tsrc/app.py", "M\tREADME.md"]
    assert worktree_is_clean(path)
    assert commit_all(path, "again") is None
    assert head_commit(path) == sha

    with pytest.raises(InvalidInput):
        commit_all(path, "  ")


def test_commit_all_uses_the_repository_identity(repo: Path, worktree_root: Path) -> None:
    git(repo, "config", "user.name", "Repo Owner")
    git(repo, "config", "user.email", "owner@example.com")
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "x.txt", "x\n")
    commit_all(tree.path, "mine")
    assert git(tree.path, "log", "-1", "--format=%an <%ae>").strip() == "Repo Owner <owner@example.com>"


# --- diffs -----------------------------------------------------------------------------------


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
    monkeypatch.setattr(workspace, "_match_sections", lambda entries, sections: None)
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
    assert sum(len(hunk["lines"]) for hunk in huge["hunks"]) == workspace.MAX_DIFF_LINES_PER_FILE
    assert files["small.txt"]["hunks"][0]["lines"][-1] == {"type": "add", "old": None, "new": 2, "text": "b"}
    assert result["truncated"] is True


def test_diff_of_a_task_worktree(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "feature.py", "x = 1\n")
    head = commit_all(tree.path, "feature")
    result = diff(repo, tree.base_commit, head)
    assert [(item["path"], item["status"]) for item in result["files"]] == [("feature.py", "added")]


# --- merging ---------------------------------------------------------------------------------


def task_with_change(repo: Path, worktree_root: Path, files: dict[str, str]) -> tuple[workspace.Worktree, str]:
    tree = new_worktree(repo, worktree_root)
    for name, content in files.items():
        write(Path(tree.path) / name, content)
    head = commit_all(tree.path, "task work")
    assert head is not None
    return tree, head


def test_merge_fast_forward_updates_the_clean_checkout(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n", "README.md": "# Better\n"})

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert result == MergeResult(commit=head, fast_forward=True)
    assert rev(repo, "main") == head == rev(repo, "HEAD")
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "README.md").read_text() == "# Better\n"
    assert git(repo, "status", "--porcelain") == ""
    assert merge_into_base(repo, tree.branch, "main", "again").already_merged


def test_merge_commit_when_base_moved_on_keeps_unrelated_local_changes(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(repo / "other.txt", "main moved\n")
    moved = commit(repo, "meanwhile on main")
    write(repo / "README.md", "# Local edit, not committed\n")
    write(repo / "scratch.txt", "untracked\n")
    git(repo, "add", "scratch.txt")

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1: Fix the login")

    assert not result.fast_forward
    assert rev(repo, "main") == result.commit == rev(repo, "HEAD")
    merge_commit = git(repo, "log", "-1", "--format=%P|%s|%an").strip()
    assert merge_commit == f"{moved} {head}|Merge KAN-1: Fix the login|Kanban Orchestrator"
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert (repo / "README.md").read_text() == "# Local edit, not committed\n"
    assert git(repo, "status", "--porcelain") == " M README.md\nA  scratch.txt\n"


def test_merge_when_the_base_branch_is_not_checked_out(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    git(repo, "switch", "--quiet", "-c", "elsewhere")
    write(repo / "elsewhere.txt", "x\n")
    commit(repo, "elsewhere")
    git(repo, "switch", "--quiet", "main")
    write(repo / "main.txt", "main\n")
    commit(repo, "main")
    git(repo, "switch", "--quiet", "elsewhere")
    before = snapshot(repo)

    result = merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert not result.fast_forward and rev(repo, "main") == result.commit
    assert git(repo, "show", "--format=", "--name-only", "main:").count("feature.txt") == 1
    after = snapshot(repo)
    assert (after["files"], after["head"], after["index"], after["status"]) == (
        before["files"], before["head"], before["index"], before["status"],
    )  # fmt: skip


def test_merge_conflict_leaves_the_repository_exactly_as_it_was(repo: Path, worktree_root: Path) -> None:
    changes = {"README.md": "# Task version\n", "src/app.py": "print('task')\n"}
    tree, head = task_with_change(repo, worktree_root, changes)
    write(repo / "README.md", "# Main version\n")
    write(repo / "src" / "app.py", "print('main')\n")
    commit(repo, "conflicting change")
    write(repo / "notes.txt", "uncommitted local note\n")
    before = snapshot(repo)
    worktree_before = snapshot(Path(tree.path))

    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    error = caught.value
    assert error.message == f"Merging {tree.branch} into main conflicts in: README.md, src/app.py"
    assert error.extra["files"] == ["README.md", "src/app.py"]
    assert error.to_dict()["files"] == ["README.md", "src/app.py"]
    assert snapshot(repo) == before
    assert snapshot(Path(tree.path)) == worktree_before
    assert rev(repo, tree.branch) == head


def test_merge_refuses_to_overwrite_uncommitted_changes(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"README.md": "# Task\n", "brand new.txt": "task\n"})
    write(repo / "README.md", "# My unsaved edit\n")
    write(repo / "brand new.txt", "my own untracked file\n")
    write(repo / "unrelated.txt", "fine\n")
    before = snapshot(repo)

    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge KAN-1")

    assert caught.value.extra["files"] == ["README.md", "brand new.txt"]
    assert "README.md, brand new.txt" in caught.value.message
    assert snapshot(repo) == before


def test_merge_refuses_to_overwrite_an_ignored_file(repo: Path, worktree_root: Path) -> None:
    tree = new_worktree(repo, worktree_root)
    write(Path(tree.path) / "debug.log", "from the task\n")
    git(tree.path, "add", "--force", "debug.log")
    git(tree.path, "commit", "--quiet", "-m", "force-add a log")
    write(repo / "debug.log", "local log\n")
    before = snapshot(repo)
    with pytest.raises(Conflict) as caught:
        merge_into_base(repo, tree.branch, "main", "Merge")
    assert caught.value.extra["files"] == ["debug.log"]
    assert snapshot(repo) == before


def test_merge_ignores_merge_configuration(repo: Path, worktree_root: Path, hermetic_git: Path) -> None:
    hermetic_git.write_text("[merge]\n\tff = false\n\tautoStash = true\n\tverifySignatures = true\n")
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(repo / "README.md", "# Local edit\n")
    assert merge_into_base(repo, tree.branch, "main", "Merge") == MergeResult(commit=head, fast_forward=True)
    assert git(repo, "status", "--porcelain") == " M README.md\n"
    assert git(repo, "stash", "list") == ""


def test_merge_refuses_while_the_base_branch_is_being_rebased(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    git(repo, "switch", "--quiet", "-c", "upstream")
    write(repo / "README.md", "# Upstream\n")
    commit(repo, "upstream")
    git(repo, "switch", "--quiet", "main")
    write(repo / "README.md", "# Mine\n")
    commit(repo, "mine")
    with pytest.raises(subprocess.CalledProcessError):
        git(repo, "rebase", "upstream")  # stops on the conflict, main is detached
    before = snapshot(repo)
    with pytest.raises(Conflict, match="being rebased"):
        merge_into_base(repo, tree.branch, "main", "Merge")
    assert snapshot(repo) == before


def test_merge_errors(repo: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        merge_into_base(repo, "kanban/nothing", "main", "Merge")
    with pytest.raises(InvalidInput, match="base branch 'develop' does not exist"):
        merge_into_base(repo, "main", "develop", "Merge")


# --- removing worktrees ----------------------------------------------------------------------


def test_remove_worktree_refuses_uncommitted_changes(repo: Path, worktree_root: Path) -> None:
    tree, _ = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    merge_into_base(repo, tree.branch, "main", "Merge")
    write(Path(tree.path) / "feature.txt", "edited after merge\n")
    with pytest.raises(Conflict, match="uncommitted changes in: feature.txt") as caught:
        remove_worktree(repo, tree.path, tree.branch, "main")
    assert caught.value.extra["files"] == ["feature.txt"]
    git(tree.path, "checkout", "--", "feature.txt")
    write(Path(tree.path) / "untracked.txt", "new\n")
    with pytest.raises(Conflict, match="untracked.txt"):
        remove_worktree(repo, tree.path, tree.branch)
    assert Path(tree.path, "untracked.txt").exists()


def test_remove_worktree_refuses_an_unmerged_branch(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    with pytest.raises(Conflict, match="not merged into 'main'"):
        remove_worktree(repo, tree.path, tree.branch, "main")
    with pytest.raises(Conflict, match="no other branch contains"):
        remove_worktree(repo, tree.path, tree.branch)
    assert Path(tree.path, "feature.txt").exists() and rev(repo, tree.branch) == head


def test_remove_worktree_after_merge_keeps_the_branch(repo: Path, worktree_root: Path) -> None:
    tree, head = task_with_change(repo, worktree_root, {"feature.txt": "feature\n"})
    write(Path(tree.path) / ".env", "ignored files do not block removal\n")
    merge_into_base(repo, tree.branch, "main", "Merge")

    remove_worktree(repo, tree.path, tree.branch, "main")

    assert not Path(tree.path).exists()
    assert rev(repo, tree.branch) == head
    assert str(Path(tree.path)) not in git(repo, "worktree", "list", "--porcelain")
    remove_worktree(repo, tree.path, tree.branch, "main")  # already gone: nothing to do

    again = new_worktree(repo, worktree_root)  # a later run brings it back on the same branch
    assert again.created and head_commit(again.path) == head


def test_remove_worktree_refuses_the_main_checkout(repo: Path) -> None:
    with pytest.raises(InvalidInput, match="own checkout"):
        remove_worktree(repo, repo, "main", "main")
