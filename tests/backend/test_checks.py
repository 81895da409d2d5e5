"""A check command runs in its folder with the server's environment minus the server's own
secrets: its output is kept in the run's log, where they must never appear."""

from __future__ import annotations

from backend.runs.checks import run_check
from backend.runs.processes import RunControl


async def test_a_check_sees_the_users_environment_but_not_the_servers_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("KANBAN_API_TOKEN", "token-that-must-stay-hidden")
    monkeypatch.setenv("KANBAN_DATABASE_URL", "postgresql://kanban:db-password@db/kanban")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-must-stay-hidden")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "oauth-must-stay-hidden")
    monkeypatch.setenv("MAKEFLAGS", "-j2")  # what a build needs is passed on
    outcome = await run_check(
        "env; pwd",
        str(tmp_path),
        timeout_seconds=30,
        control=RunControl(),
        pid_file=str(tmp_path / "pids" / "check.pid"),
        env={"HOME": str(tmp_path)},
    )
    assert outcome.passed, outcome.output
    assert "MAKEFLAGS=-j2" in outcome.output and str(tmp_path) in outcome.output
    assert "KANBAN_AGENT_PID_FILE=" in outcome.output  # how a cancel finds what the check started
    for secret in ("token-that-must-stay-hidden", "db-password", "sk-ant-must-stay-hidden", "oauth-must-stay-hidden"):
        assert secret not in outcome.output
    assert "KANBAN_API_TOKEN" not in outcome.output
