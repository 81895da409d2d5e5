"""The filesystem MCP server: every tool works inside the root, and nothing gets out of it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from fastmcp.exceptions import ToolError

from mcp_servers.filesystem_server import ConfinedFS, build_server, main

REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- escape corpus
# Each case: (tool, function of the sandbox returning the arguments). Every one must fail
# with a ToolError and leave everything outside the root byte-for-byte unchanged.

LONG_NAME = "n" * 300
LONG_PATH = "/".join(["abcdefghij"] * 455)  # 5004 characters

ESCAPES = {
    # read
    "read ../": ("read_file", lambda s: {"path": "../sentinel/secret.txt"}),
    "read a/../../": ("read_file", lambda s: {"path": "sub/../../sentinel/secret.txt"}),
    "read /etc/passwd": ("read_file", lambda s: {"path": "/etc/passwd"}),
    "read sibling absolute": ("read_file", lambda s: {"path": str(s.sibling / "note.txt")}),
    "read through dir symlink": ("read_file", lambda s: {"path": "link_out/secret.txt"}),
    "read file symlink": ("read_file", lambda s: {"path": "link_out_file"}),
    "read symlink mid-path": ("read_file", lambda s: {"path": "sub/escape/nested/more.txt"}),
    "read NUL": ("read_file", lambda s: {"path": "hello.txt\x00.png"}),
    "read long name": ("read_file", lambda s: {"path": LONG_NAME}),
    "read long path": ("read_file", lambda s: {"path": LONG_PATH}),
    "read ~": ("read_file", lambda s: {"path": "~/.bashrc"}),
    "read url-encoded": ("read_file", lambda s: {"path": "%2e%2e/sentinel/secret.txt"}),
    "read url-encoded slash": ("read_file", lambda s: {"path": "..%2Fsentinel%2Fsecret.txt"}),
    "read fifo": ("read_file", lambda s: {"path": "pipe"}),
    "read directory": ("read_file", lambda s: {"path": "sub"}),
    "read empty": ("read_file", lambda s: {"path": ""}),
    # write
    "write ../": ("write_file", lambda s: {"path": "../evil.txt", "content": "x"}),
    "write a/../../": ("write_file", lambda s: {"path": "sub/../../evil.txt", "content": "x"}),
    "write absolute outside": ("write_file", lambda s: {"path": str(s.sentinel / "evil.txt"), "content": "x"}),
    "write sibling absolute": ("write_file", lambda s: {"path": str(s.sibling / "note.txt"), "content": "x"}),
    "write through dir symlink": ("write_file", lambda s: {"path": "link_out/evil.txt", "content": "x"}),
    "write over file symlink": ("write_file", lambda s: {"path": "link_out_file", "content": "x"}),
    "write dangling symlink": ("write_file", lambda s: {"path": "dangling_out", "content": "x"}),
    "write symlink mid-path": ("write_file", lambda s: {"path": "sub/escape/nested/new/evil.txt", "content": "x"}),
    "write NUL": ("write_file", lambda s: {"path": "a\x00b", "content": "x"}),
    "write long name": ("write_file", lambda s: {"path": LONG_NAME, "content": "x"}),
    "write long path": ("write_file", lambda s: {"path": LONG_PATH, "content": "x"}),
    "write ~": ("write_file", lambda s: {"path": "~", "content": "x"}),
    "write url-encoded": ("write_file", lambda s: {"path": "%2e%2e/evil.txt", "content": "x"}),
    "write fifo": ("write_file", lambda s: {"path": "pipe", "content": "x"}),
    "write root": ("write_file", lambda s: {"path": ".", "content": "x"}),
    # list / search / info
    "list ..": ("list_directory", lambda s: {"path": ".."}),
    "list /": ("list_directory", lambda s: {"path": "/"}),
    "list sibling absolute": ("list_directory", lambda s: {"path": str(s.sibling)}),
    "list dir symlink": ("list_directory", lambda s: {"path": "link_out"}),
    "list symlink mid-path": ("list_directory", lambda s: {"path": "sub/escape/nested"}),
    "list ~": ("list_directory", lambda s: {"path": "~"}),
    "list url-encoded": ("list_directory", lambda s: {"path": "%2e%2e"}),
    "search ..": ("search_files", lambda s: {"pattern": "*", "path": ".."}),
    "search dir symlink": ("search_files", lambda s: {"pattern": "*", "path": "link_out", "contains": "secret"}),
    "info ../": ("file_info", lambda s: {"path": "../sentinel"}),
    "info through dir symlink": ("file_info", lambda s: {"path": "link_out/secret.txt"}),
    "info /etc/passwd": ("file_info", lambda s: {"path": "/etc/passwd"}),
    # make directory
    "mkdir ../": ("make_directory", lambda s: {"path": "../newdir"}),
    "mkdir through dir symlink": ("make_directory", lambda s: {"path": "link_out/newdir"}),
    "mkdir symlink mid-path": ("make_directory", lambda s: {"path": "sub/escape/a/b"}),
    "mkdir absolute outside": ("make_directory", lambda s: {"path": str(s.base / "newdir")}),
    # move out of / into the root
    "move out via ../": ("move_path", lambda s: {"source": "hello.txt", "destination": "../stolen.txt"}),
    "move out via dir symlink": ("move_path", lambda s: {"source": "hello.txt", "destination": "link_out/stolen.txt"}),
    "move out absolute": ("move_path", lambda s: {"source": "sub", "destination": str(s.sibling / "sub")}),
    "move over outward symlink": (
        "move_path",
        lambda s: {"source": "hello.txt", "destination": "link_out_file", "overwrite": True},
    ),
    "move in via ../": ("move_path", lambda s: {"source": "../sentinel/secret.txt", "destination": "got.txt"}),
    "move in via dir symlink": ("move_path", lambda s: {"source": "link_out/secret.txt", "destination": "got.txt"}),
    "move in via mid-path symlink": (
        "move_path",
        lambda s: {"source": "sub/escape/nested", "destination": "got"},
    ),
    "move outward symlink itself": ("move_path", lambda s: {"source": "link_out", "destination": "moved_link"}),
    "move root": ("move_path", lambda s: {"source": ".", "destination": "sub/root"}),
    "move into itself": ("move_path", lambda s: {"source": "sub", "destination": "sub/deep/sub"}),
    # delete
    "delete empty": ("delete_path", lambda s: {"path": ""}),
    "delete blank": ("delete_path", lambda s: {"path": "   "}),
    "delete root .": ("delete_path", lambda s: {"path": ".", "recursive": True}),
    "delete root ./": ("delete_path", lambda s: {"path": "./", "recursive": True}),
    "delete root sub/..": ("delete_path", lambda s: {"path": "sub/..", "recursive": True}),
    "delete root absolute": ("delete_path", lambda s: {"path": str(s.root), "recursive": True}),
    "delete /": ("delete_path", lambda s: {"path": "/", "recursive": True}),
    "delete ../": ("delete_path", lambda s: {"path": "../sentinel", "recursive": True}),
    "delete sibling absolute": ("delete_path", lambda s: {"path": str(s.sibling), "recursive": True}),
    "delete through dir symlink": ("delete_path", lambda s: {"path": "link_out/secret.txt"}),
    "delete outward dir symlink": ("delete_path", lambda s: {"path": "link_out", "recursive": True}),
    "delete symlink mid-path": ("delete_path", lambda s: {"path": "sub/escape/nested", "recursive": True}),
    "delete ~": ("delete_path", lambda s: {"path": "~", "recursive": True}),
    "delete url-encoded": ("delete_path", lambda s: {"path": "%2e%2e/sentinel", "recursive": True}),
    "delete NUL": ("delete_path", lambda s: {"path": "hello.txt\x00"}),
}


@pytest.mark.parametrize("case", list(ESCAPES), ids=list(ESCAPES))
async def test_escape_attempt_is_refused(case, sandbox, fs_client):
    tool, make_args = ESCAPES[case]
    outside_before = sandbox.outside_digest()
    root_entries_before = sorted(p.name for p in sandbox.root.iterdir())

    with pytest.raises(ToolError) as excinfo:
        await fs_client.call_tool(tool, make_args(sandbox))

    assert str(excinfo.value).strip(), "the refusal should say why"
    assert sandbox.outside_digest() == outside_before
    assert sandbox.root.is_dir()
    assert sorted(p.name for p in sandbox.root.iterdir()) == root_entries_before
    assert "top secret" not in str(excinfo.value)


async def test_refusals_name_the_reason(call, sandbox):
    cases = {
        "../x": "outside the root",
        "link_out/secret.txt": "symbolic link",
        "a\x00b": "NUL",
        LONG_NAME: "255",
        LONG_PATH: "too long",
        "~/x": "'~'",
        "%2e%2e/x": "URL-encoded",
    }
    for path, reason in cases.items():
        with pytest.raises(ToolError, match=reason):
            await call("read_file", path=path)
    with pytest.raises(ToolError, match="root folder"):
        await call("delete_path", path=".", recursive=True)
    with pytest.raises(ToolError, match="fifo"):
        await call("read_file", path="pipe")


async def test_server_survives_refusals(fs_client, sandbox):
    for tool, make_args in ESCAPES.values():
        result = await fs_client.call_tool(tool, make_args(sandbox), raise_on_error=False)
        assert result.is_error
    ok = await fs_client.call_tool("read_file", {"path": "hello.txt"})
    assert ok.data["content"] == "hello world\n"


# --------------------------------------------------------------------------- races and links


def test_symlink_swapped_in_after_the_check_is_not_followed(sandbox):
    """Between resolving a path and opening it, a directory is replaced by a symlink to the outside."""
    fs = ConfinedFS(sandbox.root)
    (sandbox.root / "victim").mkdir()
    (sandbox.root / "victim" / "nested").mkdir()
    read_target = fs.target("victim/nested/more.txt")
    write_target = fs.target("victim/nested/new.txt")
    list_target = fs.target("victim/nested")
    (sandbox.root / "victim" / "nested").rmdir()
    (sandbox.root / "victim").rmdir()
    (sandbox.root / "victim").symlink_to(sandbox.sentinel, target_is_directory=True)
    before = sandbox.outside_digest()

    fs.target = lambda path, what="path": {  # type: ignore[method-assign]
        "victim/nested/more.txt": read_target,
        "victim/nested/new.txt": write_target,
        "victim/nested": list_target,
    }[path]
    with pytest.raises(ToolError, match="symbolic link"):
        fs.read_file("victim/nested/more.txt")
    with pytest.raises(ToolError, match="symbolic link"):
        fs.write_file("victim/nested/new.txt", "x")
    with pytest.raises(ToolError, match="symbolic link"):
        fs.list_directory("victim/nested")
    assert sandbox.outside_digest() == before


def test_file_swapped_for_symlink_is_not_written_through(sandbox):
    fs = ConfinedFS(sandbox.root)
    target = fs.target("swap.txt")
    (sandbox.root / "swap.txt").symlink_to(sandbox.sentinel / "secret.txt")
    fs.target = lambda path, what="path": target  # type: ignore[method-assign]
    before = sandbox.outside_digest()
    with pytest.raises(ToolError, match="symlink"):
        fs.write_file("swap.txt", "replaced")
    with pytest.raises(ToolError, match="symlink"):
        fs.read_file("swap.txt")
    assert (sandbox.root / "swap.txt").is_symlink()
    assert sandbox.outside_digest() == before


async def test_write_to_hard_link_does_not_change_the_outside_file(call, sandbox):
    os.link(sandbox.sentinel / "secret.txt", sandbox.root / "hard.txt")
    await call("write_file", path="hard.txt", content="new content")
    assert (sandbox.root / "hard.txt").read_text() == "new content"
    assert (sandbox.sentinel / "secret.txt").read_text() == "top secret\n"


async def test_symlink_inside_the_root_is_followed(call, sandbox):
    assert (await call("read_file", path="link_in/code.py"))["path"] == "sub/code.py"
    await call("write_file", path="link_in/via_link.txt", content="ok")
    assert (sandbox.root / "sub" / "via_link.txt").read_text() == "ok"
    listing = await call("list_directory", path="link_in")
    assert "code.py" in {e["name"] for e in listing["entries"]}
    info = await call("file_info", path="link_in")
    assert info["type"] == "symlink" and info["resolves_to"] == "sub" and info["link_target"] == "sub"


async def test_deleting_an_inward_symlink_removes_only_the_link(call, sandbox):
    assert await call("delete_path", path="link_in") == {"path": "link_in", "deleted": "symlink"}
    assert not (sandbox.root / "link_in").exists()
    assert (sandbox.root / "sub" / "code.py").is_file()


async def test_absolute_path_inside_the_root_is_accepted(call, sandbox):
    data = await call("read_file", path=str(sandbox.root / "hello.txt"))
    assert data["path"] == "hello.txt"


async def test_root_given_through_a_symlink(sandbox):
    alias = sandbox.base / "alias"
    alias.symlink_to(sandbox.root, target_is_directory=True)
    async with Client(build_server(alias)) as client:
        r = await client.call_tool("read_file", {"path": str(alias / "hello.txt")})
        assert r.data["content"] == "hello world\n"
        with pytest.raises(ToolError):
            await client.call_tool("read_file", {"path": str(sandbox.sentinel / "secret.txt")})


# --------------------------------------------------------------------------- tools


async def test_list_tools(fs_client):
    tools = {t.name: t for t in await fs_client.list_tools()}
    assert set(tools) == {
        "read_file",
        "write_file",
        "list_directory",
        "search_files",
        "make_directory",
        "move_path",
        "delete_path",
        "file_info",
    }
    for tool in tools.values():
        assert tool.description
        for prop in tool.input_schema["properties"].values():
            assert "enum" not in prop and prop["type"] in {"string", "integer", "boolean"}


async def test_read_file(call):
    data = await call("read_file", path="hello.txt")
    assert data == {
        "path": "hello.txt",
        "size": 12,
        "offset": 0,
        "length": 12,
        "next_offset": None,
        "encoding": "utf-8",
        "content": "hello world\n",
    }


async def test_read_file_paging(call):
    first = await call("read_file", path="hello.txt", limit=5)
    assert (first["content"], first["next_offset"]) == ("hello", 5)
    second = await call("read_file", path="hello.txt", offset=first["next_offset"], limit=100)
    assert (second["content"], second["next_offset"]) == (" world\n", None)
    past_end = await call("read_file", path="hello.txt", offset=100)
    assert past_end["content"] == "" and past_end["next_offset"] is None
    with pytest.raises(ToolError, match="offset"):
        await call("read_file", path="hello.txt", offset=-1)


async def test_read_file_paging_keeps_utf8_characters_whole(call, sandbox):
    text = "añb€c😀d" * 3
    (sandbox.root / "utf8.txt").write_text(text, encoding="utf-8")
    pieces, offset = [], 0
    while offset is not None:
        page = await call("read_file", path="utf8.txt", offset=offset, limit=4)
        assert page["encoding"] == "utf-8"
        pieces.append(page["content"])
        offset = page["next_offset"]
    assert "".join(pieces) == text


async def test_read_binary_file_as_base64(call):
    data = await call("read_file", path="bin.dat")
    assert data["encoding"] == "base64"
    assert base64.b64decode(data["content"]) == bytes(range(256))


async def test_read_is_capped_per_call(sandbox):
    (sandbox.root / "big.txt").write_text("x" * 5000)
    async with Client(build_server(sandbox.root, max_read_bytes=1024)) as client:
        page = (await client.call_tool("read_file", {"path": "big.txt", "limit": 999999})).data
        assert page["length"] == 1024 and page["next_offset"] == 1024 and page["size"] == 5000


async def test_default_read_cap_is_one_mebibyte(call, sandbox):
    (sandbox.root / "big.bin").write_bytes(b"a" * (1024 * 1024 + 10))
    page = await call("read_file", path="big.bin")
    assert page["length"] == 1024 * 1024 and page["next_offset"] == 1024 * 1024


async def test_write_file_creates_parents_and_overwrites(call, sandbox):
    assert await call("write_file", path="new/dir/file.txt", content="héllo") == {
        "path": "new/dir/file.txt",
        "bytes_written": 6,
        "created": True,
    }
    assert (sandbox.root / "new" / "dir" / "file.txt").read_text(encoding="utf-8") == "héllo"
    (sandbox.root / "hello.txt").chmod(0o600)
    result = await call("write_file", path="hello.txt", content="")
    assert result["created"] is False and (sandbox.root / "hello.txt").read_text() == ""
    assert (sandbox.root / "hello.txt").stat().st_mode & 0o777 == 0o600
    assert not [p for p in sandbox.root.iterdir() if p.name.endswith(".tmp")]


async def test_write_size_limit(sandbox, monkeypatch):
    monkeypatch.setenv("KANBAN_FS_MAX_WRITE_BYTES", "10")
    async with Client(build_server(sandbox.root)) as client:
        await client.call_tool("write_file", {"path": "ok.txt", "content": "x" * 10})
        with pytest.raises(ToolError, match="limit"):
            await client.call_tool("write_file", {"path": "big.txt", "content": "x" * 11})
    assert not (sandbox.root / "big.txt").exists()


async def test_default_write_limit_is_five_mebibytes(call, sandbox):
    with pytest.raises(ToolError, match="limit"):
        await call("write_file", path="huge.txt", content="x" * (5 * 1024 * 1024 + 1))
    assert not (sandbox.root / "huge.txt").exists()


async def test_write_into_a_file_parent_fails(call):
    with pytest.raises(ToolError, match="not a directory"):
        await call("write_file", path="hello.txt/child.txt", content="x")


async def test_list_directory(call):
    listing = await call("list_directory")
    by_name = {e["name"]: e for e in listing["entries"]}
    assert listing["path"] == "." and listing["truncated"] is False
    assert by_name["hello.txt"] == {"name": "hello.txt", "type": "file", "size": 12}
    assert by_name["sub"]["type"] == "directory"
    assert by_name["link_out"]["type"] == "symlink"
    assert by_name["pipe"]["type"] == "fifo"
    assert [e["name"] for e in (await call("list_directory", path="sub/"))["entries"]] == [
        "code.py",
        "deep",
        "escape",
    ]
    with pytest.raises(ToolError, match="no such"):
        await call("list_directory", path="missing")
    with pytest.raises(ToolError, match="not a directory"):
        await call("list_directory", path="hello.txt")


async def test_search_files_by_name(call):
    found = await call("search_files", pattern="*.py")
    assert found["results"] == [{"path": "sub/code.py", "type": "file"}]
    dirs = await call("search_files", pattern="deep")
    assert dirs["results"] == [{"path": "sub/deep", "type": "directory"}]
    by_path = await call("search_files", pattern="sub/*/*.md")
    assert [r["path"] for r in by_path["results"]] == ["sub/deep/notes.md"]
    scoped = await call("search_files", pattern="*", path="sub/deep")
    assert [r["path"] for r in scoped["results"]] == ["sub/deep/notes.md"]


async def test_search_files_with_contains(call):
    found = await call("search_files", pattern="*", contains="needle")
    assert found["results"] == [
        {"path": "sub/code.py", "matches": [{"line": 2, "text": "return 'needle'"}]},
        {"path": "sub/deep/notes.md", "matches": [{"line": 2, "text": "needle in a haystack"}]},
    ]
    # The outward symlinks (link_out, sub/escape) hold "secret" but are never entered.
    assert (await call("search_files", pattern="*", contains="secret"))["results"] == []


async def test_search_results_are_capped(call, sandbox):
    for i in range(30):
        (sandbox.root / f"f{i:02}.log").write_text("x")
    capped = await call("search_files", pattern="*.log", max_results=10)
    assert len(capped["results"]) == 10 and capped["truncated"] is True
    with pytest.raises(ToolError):
        await call("search_files", pattern="")


async def test_make_directory(call, sandbox):
    assert await call("make_directory", path="a/b/c") == {"path": "a/b/c", "created": True}
    assert (sandbox.root / "a" / "b" / "c").is_dir()
    assert await call("make_directory", path="a/b/c") == {"path": "a/b/c", "created": False}
    with pytest.raises(ToolError, match="in the way"):
        await call("make_directory", path="hello.txt")


async def test_move_path(call, sandbox):
    assert await call("move_path", source="hello.txt", destination="moved/hi.txt") == {
        "source": "hello.txt",
        "destination": "moved/hi.txt",
    }
    assert (sandbox.root / "moved" / "hi.txt").read_text() == "hello world\n"
    assert not (sandbox.root / "hello.txt").exists()
    await call("move_path", source="sub/deep", destination="deep2")
    assert (sandbox.root / "deep2" / "notes.md").is_file()
    (sandbox.root / "other.txt").write_text("other")
    with pytest.raises(ToolError, match="already exists"):
        await call("move_path", source="other.txt", destination="moved/hi.txt")
    await call("move_path", source="other.txt", destination="moved/hi.txt", overwrite=True)
    assert (sandbox.root / "moved" / "hi.txt").read_text() == "other"
    with pytest.raises(ToolError, match="no such"):
        await call("move_path", source="missing.txt", destination="x.txt")


async def test_delete_path(call, sandbox):
    assert await call("delete_path", path="hello.txt") == {"path": "hello.txt", "deleted": "file"}
    assert not (sandbox.root / "hello.txt").exists()
    with pytest.raises(ToolError, match="not empty"):
        await call("delete_path", path="sub/deep")
    assert await call("delete_path", path="sub/deep", recursive=True) == {"path": "sub/deep", "deleted": "directory"}
    assert not (sandbox.root / "sub" / "deep").exists()
    (sandbox.root / "empty").mkdir()
    await call("delete_path", path="empty")
    assert not (sandbox.root / "empty").exists()
    with pytest.raises(ToolError, match="no such"):
        await call("delete_path", path="missing")


async def test_recursive_delete_does_not_follow_symlinks(call, sandbox):
    before = sandbox.outside_digest()
    # sub/escape points at the sentinel; deleting sub removes the link, not what it points to.
    await call("delete_path", path="sub", recursive=True)
    assert not (sandbox.root / "sub").exists()
    assert sandbox.outside_digest() == before


async def test_recursive_delete_of_a_tree_deeper_than_the_recursion_limit(call, sandbox):
    depth = sys.getrecursionlimit() + 200
    fd = os.open(sandbox.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level % 100 == 0:
                os.close(os.open(f"f{level}", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
                os.symlink(str(sandbox.sentinel), f"out{level}", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    before = sandbox.outside_digest()
    try:
        assert await call("delete_path", path="d", recursive=True) == {"path": "d", "deleted": "directory"}
        assert not (sandbox.root / "d").exists()
        assert sandbox.outside_digest() == before
    finally:  # pytest's own clean-up of temp folders would hit the recursion limit on it
        subprocess.run(["rm", "-rf", str(sandbox.root / "d")], check=True)


async def test_booleans_are_true_or_false(call, sandbox):
    for bad in ("yes", 1, "on"):
        with pytest.raises(ToolError, match="must be true or false"):
            await call("delete_path", path="sub", recursive=bad)
        with pytest.raises(ToolError, match="must be true or false"):
            await call("move_path", source="hello.txt", destination="sub/code.py", overwrite=bad)
    assert (sandbox.root / "sub" / "deep" / "notes.md").exists()
    assert (sandbox.root / "hello.txt").exists()
    assert await call("delete_path", path="sub", recursive="true") == {"path": "sub", "deleted": "directory"}


async def test_file_info(call):
    info = await call("file_info", path="hello.txt")
    assert info["path"] == "hello.txt" and info["type"] == "file" and info["size"] == 12
    assert info["mode"].startswith("0o") and info["modified"].endswith("+00:00")
    root = await call("file_info", path=".")
    assert root["path"] == "." and root["type"] == "directory"
    assert (await call("file_info", path="pipe"))["type"] == "fifo"
    with pytest.raises(ToolError, match="no such"):
        await call("file_info", path="missing")


# --------------------------------------------------------------------------- process entry point


def test_build_server_rejects_a_missing_root(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        build_server(tmp_path / "missing")


def test_main_reports_a_missing_root(tmp_path, capsys):
    assert main(["--root", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_limit_in_env_is_reported(sandbox, monkeypatch):
    monkeypatch.setenv("KANBAN_FS_MAX_READ_BYTES", "lots")
    with pytest.raises(ValueError, match="KANBAN_FS_MAX_READ_BYTES"):
        build_server(sandbox.root)


async def test_over_stdio(sandbox):
    transport = StdioTransport(
        command=sys.executable,
        args=["-m", "mcp_servers.filesystem_server", "--root", str(sandbox.root)],
        cwd=str(REPO_ROOT),
    )
    before = sandbox.outside_digest()
    started = time.monotonic()
    async with Client(transport) as client:
        assert len(await client.list_tools()) == 8
        await client.call_tool("write_file", {"path": "from_stdio/a.txt", "content": "over stdio"})
        read = await client.call_tool("read_file", {"path": "from_stdio/a.txt"})
        assert read.data["content"] == "over stdio"
        with pytest.raises(ToolError, match="outside the root"):
            await client.call_tool("write_file", {"path": "../evil.txt", "content": "x"})
        with pytest.raises(ToolError, match="symbolic link"):
            await client.call_tool("read_file", {"path": "link_out/secret.txt"})
        listing = await client.call_tool("list_directory", {"path": "from_stdio"})
        assert listing.data["entries"] == [{"name": "a.txt", "type": "file", "size": 10}]
    assert (sandbox.root / "from_stdio" / "a.txt").read_text() == "over stdio"
    assert sandbox.outside_digest() == before
    assert time.monotonic() - started < 30


async def test_over_stdio_with_root_from_env(sandbox):
    transport = StdioTransport(
        command=sys.executable,
        args=["-m", "mcp_servers.filesystem_server"],
        env={"KANBAN_FS_ROOT": str(sandbox.root), "PATH": os.environ.get("PATH", "")},
        cwd=str(REPO_ROOT),
    )
    async with Client(transport) as client:
        read = await client.call_tool("read_file", {"path": "hello.txt"})
        assert read.data["content"] == "hello world\n"
