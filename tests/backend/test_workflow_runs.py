"""Workflows run by the board: the real Claude Code CLI against the fake Messages API, real git
repositories, templates in the project's `.kanban/workflows`.

Each step is a card linked to the steps it needs; it starts by itself once they are done, gets
their results, may be gated by a check (`until`, or a check step) or by a person (approval)."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import httpx

from tests.backend.factories import create_project
from tests.backend.test_runs import agent_env, all_events, git, wait_for_status
from tests.fixtures.fake_anthropic import FakeAnthropic, Turn

__all__ = ["agent_env"]  # the fixture, used by name


def write_template(project: dict, name: str, text: str) -> None:
    folder = Path(project["workspace_path"]) / ".kanban" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(text))


async def start(client: httpx.AsyncClient, project: dict, template: str, **inputs: object) -> dict:
    response = await client.post(
        "/api/workflows", json={"project_id": project["id"], "template": template, "inputs": inputs}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def wait_for_workflow(client: httpx.AsyncClient, workflow_id: int, predicate, timeout: float = 90) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        workflow = (await client.get(f"/api/workflows/{workflow_id}")).json()
        if predicate(workflow):
            return workflow
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"workflow did not get there: {workflow}")
        await asyncio.sleep(0.1)


def step(workflow: dict, step_id: str) -> dict:
    return next(item for item in workflow["steps"] if item["step_id"] == step_id)


async def runs_of(client: httpx.AsyncClient, task_id: int) -> list[dict]:
    """The task's runs, oldest first, each in full (prompt, resumed session)."""
    summaries = reversed((await client.get(f"/api/tasks/{task_id}/runs")).json())
    return [(await client.get(f"/api/runs/{run['id']}")).json() for run in summaries]


THREE_STEPS = """
    name: three-steps
    title: Three steps
    inputs:
      topic:
        type: string
    steps:
      - id: first
        title: Write the first file
        prompt: "[wf-first] Write first.txt about {{topic}}."
        review: auto
      - id: second
        title: Build on the first
        needs: [first]
        prompt: "[wf-second] The first step said: {{steps.first.result}}"
        review: auto
      - id: verify
        title: Both files are there
        kind: check
        needs: [second]
        command: test -f first.txt && test -f second.txt && echo both files are there
"""


async def test_three_steps_run_in_order_with_results_and_commits(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    write_template(project, "three-steps", THREE_STEPS)
    agent_env.add_script(
        "[wf-first]",
        [Turn.tool_use("Write", {"file_path": "first.txt", "content": "one\n"}), Turn.text("Wrote first.txt (42)")],
    )
    agent_env.add_script(
        "[wf-second]",
        [Turn.tool_use("Write", {"file_path": "second.txt", "content": "two\n"}), Turn.text("Wrote second.txt")],
    )

    workflow = await start(client, project, "three-steps", topic="owls")
    assert [s["step_id"] for s in workflow["steps"]] == ["first", "second", "verify"]
    assert workflow["progress"] == {"done": 0, "total": 3, "current": []}  # read before anything started
    second_card = step(workflow, "second")
    assert second_card["blocked"] and "is in" in second_card["reason"]
    parent = (await client.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
    assert parent["status"] == "in_progress" and parent["workflow_id"] == workflow["id"]
    assert (await client.post(f"/api/tasks/{parent['id']}/runs", json={})).status_code == 409

    done = await wait_for_workflow(client, workflow["id"], lambda w: w["status"] == "done")
    assert done["progress"]["done"] == 3 and done["phase"] == "done"
    first_task, second_task, verify_task = (step(done, s)["task_id"] for s in ("first", "second", "verify"))
    (first_run,) = await runs_of(client, first_task)
    (second_run,) = await runs_of(client, second_task)
    (verify_run,) = await runs_of(client, verify_task)
    # Step 2 started only after step 1 was done (accepted automatically: merged).
    first_done = (await client.get(f"/api/tasks/{first_task}")).json()
    assert first_done["status"] == "done" and first_done["result"] == "Wrote first.txt (42)"
    assert second_run["created_at"] >= first_run["finished_at"]
    # The fake API got step 1's result in step 2's prompt, and the card shows what the agent got.
    (request,) = [r for r in agent_env.main_requests() if "[wf-second]" in r.all_text()][:1]
    assert "The first step said: Wrote first.txt (42)" in request.all_text()
    second_done = (await client.get(f"/api/tasks/{second_task}")).json()
    assert "The first step said: Wrote first.txt (42)" in second_done["description"]
    # Step 2's branch has step 1's commits; the check ran where both files are.
    repo = project["workspace_path"]
    assert git(repo, "merge-base", "--is-ancestor", first_run["head_commit"], second_run["branch"]) == ""
    assert verify_run["kind"] == "check" and verify_run["status"] == "succeeded"
    checks = [e for e in await all_events(client, verify_run["id"]) if e["type"] == "check"]
    assert checks[-1]["payload"]["status"] == "passed" and "both files are there" in checks[-1]["payload"]["output"]
    assert git(repo, "show", f"{project['base_branch']}:second.txt") == "two"
    # The workflow's card is done, with the final step's result.
    parent = (await client.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
    assert parent["status"] == "done" and "both files are there" in parent["result"]


PASSED_ON = """
    name: passed-on
    title: A step's commits passed on without a merge
    steps:
      - id: test
        title: Write the failing test
        prompt: "[wf-passed-test] Write the test."
        review: auto
        merge: false
      - id: fix
        title: Fix it
        needs: [test]
        prompt: "[wf-passed-fix] Fix it."
        review: human
"""


async def test_a_step_done_without_its_merge_passes_its_commits_to_the_next(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    write_template(project, "passed-on", PASSED_ON)
    agent_env.add_script(
        "[wf-passed-test]",
        [Turn.tool_use("Write", {"file_path": "test_bug.txt", "content": "fails\n"}), Turn.text("Test written")],
    )
    agent_env.add_script(
        "[wf-passed-fix]",
        [Turn.tool_use("Write", {"file_path": "fix.txt", "content": "fixed\n"}), Turn.text("Fixed")],
    )
    workflow = await start(client, project, "passed-on")
    test_task, fix_task = step(workflow, "test")["task_id"], step(workflow, "fix")["task_id"]
    fixed = await wait_for_status(client, fix_task, {"succeeded", "failed"}, timeout=90)
    assert fixed["status"] == "succeeded", fixed["error"]
    (test_run,) = await runs_of(client, test_task)
    assert (await client.get(f"/api/tasks/{test_task}")).json()["status"] == "done"
    repo, base = project["workspace_path"], project["base_branch"]
    # Done, not merged: the base branch has no failing test; the fix's branch starts from it.
    assert "test_bug.txt" not in git(repo, "ls-tree", "--name-only", base).split()
    assert git(repo, "merge-base", "--is-ancestor", test_run["head_commit"], fixed["branch"]) == ""
    # Approving the fix brings both into the base branch.
    approved = await client.post(f"/api/tasks/{fix_task}/approve")
    assert approved.status_code == 200, approved.text
    assert git(repo, "show", f"{base}:test_bug.txt") == "fails" and git(repo, "show", f"{base}:fix.txt") == "fixed"


UNTIL = """
    name: until-tests-pass
    title: Until the tests pass
    inputs:
      counter:
        type: string
      needed:
        type: integer
      attempts:
        type: integer
        default: 3
    steps:
      - id: work
        title: Make it pass
        prompt: "[wf-until-{{needed}}] Make the check pass."
        review: auto
        until:
          check: 'n=$(($(cat {{counter}} 2>/dev/null || echo 0) + 1)); echo $n > {{counter}}; echo "attempt $n"; test $n -ge {{needed}}'
          max_attempts: {{attempts}}
      - id: after
        title: After it passed
        needs: [work]
        prompt: "[wf-after-{{needed}}] Carry on."
"""


async def test_a_check_that_fails_twice_drives_the_same_session_three_times(client, agent_env, tmp_path):
    project = await create_project(client)
    write_template(project, "until-tests-pass", UNTIL.replace("max_attempts: {{attempts}}", "max_attempts: 3"))
    agent_env.add_script("[wf-until-3]", [Turn.text("attempt one"), Turn.text("attempt two"), Turn.text("fixed")])
    agent_env.add_script("[wf-after-3]", [Turn.text("carried on")])
    counter = tmp_path / "count"
    workflow = await start(client, project, "until-tests-pass", counter=str(counter), needed=3)
    work = step(workflow, "work")["task_id"]

    done = await wait_for_workflow(
        client, workflow["id"], lambda w: step(w, "after")["run_status"] in ("succeeded", "failed")
    )
    runs = await runs_of(client, work)
    assert [r["status"] for r in runs] == ["failed", "failed", "succeeded"]
    assert [r["check_passed"] for r in runs] == [False, False, True]
    assert [r["reason"] for r in runs] == ["start", "check_failed", "check_failed"]
    assert len({r["session_id"] for r in runs}) == 1 and runs[0]["session_id"]
    assert runs[1]["resume_session_id"] == runs[0]["session_id"]
    assert "attempt 1 of 3" in runs[0]["error"] and "tries again" in runs[0]["error"]
    assert counter.read_text().strip() == "3"
    # The retry's prompt carries the check's output; the agent continued its session each time.
    assert "attempt 1" in runs[1]["prompt"] and "failed" in runs[1]["prompt"]
    assert step(done, "work")["status"] == "done" and step(done, "work")["runs"] == 3
    assert step(done, "after")["run_status"] == "succeeded"


async def test_a_check_that_never_passes_fails_the_step_and_blocks_its_dependents(client, agent_env, tmp_path):
    project = await create_project(client)
    write_template(project, "until-tests-pass", UNTIL.replace("max_attempts: {{attempts}}", "max_attempts: 2"))
    agent_env.add_script("[wf-until-99]", [Turn.text("try one"), Turn.text("try two"), Turn.text("never")])
    workflow = await start(client, project, "until-tests-pass", counter=str(tmp_path / "count"), needed=99)
    work = step(workflow, "work")["task_id"]

    stalled = await wait_for_workflow(client, workflow["id"], lambda w: w["phase"] == "stalled")
    runs = await runs_of(client, work)
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert "attempt 2 of 2" in runs[-1]["error"] and "no attempts are left" in runs[-1]["error"]
    assert step(stalled, "work")["status"] == "todo" and "its run failed" in step(stalled, "work")["reason"]
    after = step(stalled, "after")
    assert after["blocked"] and "run failed" in after["reason"] and after["run_status"] is None
    await asyncio.sleep(1.5)  # nothing else starts
    assert len(await runs_of(client, work)) == 2 and await runs_of(client, after["task_id"]) == []
    assert agent_env.remaining("[wf-until-99]") == 1


APPROVAL = """
    name: with-approval
    title: With an approval
    steps:
      - id: plan
        title: Plan it
        prompt: "[wf-plan] Make a plan."
        review: auto
      - id: approve
        kind: approval
        title: Approve the plan
        needs: [plan]
        prompt: "The plan: {{steps.plan.result}}"
      - id: build
        title: Build it
        needs: [approve]
        prompt: "[wf-build] Build what was planned: {{steps.plan.result}}"
"""


async def test_an_approval_step_waits_for_a_person(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    write_template(project, "with-approval", APPROVAL)
    agent_env.add_script("[wf-plan]", [Turn.text("Plan A"), Turn.text("Plan B, with tests")])
    agent_env.add_script("[wf-build]", [Turn.text("Built plan B")])
    workflow = await start(client, project, "with-approval")

    waiting = await wait_for_workflow(client, workflow["id"], lambda w: step(w, "approve")["status"] == "needs_review")
    assert waiting["phase"] == "needs_you" and step(waiting, "approve")["reason"] == "waits for a person in Review"
    approval = (await client.get(f"/api/tasks/{step(waiting, 'approve')['task_id']}")).json()
    assert approval["description"] == "The plan: Plan A"
    assert (await client.post(f"/api/tasks/{approval['id']}/runs", json={})).status_code == 409
    await asyncio.sleep(1.2)
    assert await runs_of(client, step(waiting, "build")["task_id"]) == []  # the gate holds

    # Sent back: the plan's agent continues its session with the feedback.
    response = await client.post(f"/api/tasks/{approval['id']}/request-changes", json={"feedback": "Add tests"})
    assert response.status_code in (200, 202), response.text
    again = await wait_for_workflow(
        client,
        workflow["id"],
        lambda w: step(w, "approve")["status"] == "needs_review" and step(w, "plan")["runs"] == 2,
    )
    plan_runs = await runs_of(client, step(again, "plan")["task_id"])
    assert plan_runs[1]["resume_session_id"] == plan_runs[0]["session_id"] and "Add tests" in plan_runs[1]["prompt"]
    assert [r["reason"] for r in plan_runs] == ["start", "sent_back"]
    approval = (await client.get(f"/api/tasks/{approval['id']}")).json()
    assert approval["description"] == "The plan: Plan B, with tests"

    assert (await client.post(f"/api/tasks/{approval['id']}/approve")).status_code == 200
    build = await wait_for_status(client, step(again, "build")["task_id"], {"succeeded", "failed"})
    assert build["status"] == "succeeded"
    (request,) = [r for r in agent_env.main_requests() if "[wf-build]" in r.all_text()][:1]
    assert "Build what was planned: Plan B, with tests" in request.all_text()
    # `build` is reviewed by a person (the default): the workflow waits for that.
    final = await wait_for_workflow(client, workflow["id"], lambda w: step(w, "build")["status"] == "needs_review")
    assert final["status"] == "running" and final["phase"] == "needs_you"
    assert (await client.post(f"/api/tasks/{step(final, 'build')['task_id']}/approve")).status_code == 200
    finished = await wait_for_workflow(client, workflow["id"], lambda w: w["status"] == "done")
    assert finished["result"] == "Built plan B"


async def test_cancelling_a_workflow_cancels_its_running_step(client, agent_env: FakeAnthropic):
    project = await create_project(client)
    write_template(project, "with-approval", APPROVAL)
    agent_env.add_script("[wf-plan]", [Turn.hang(30)])
    workflow = await start(client, project, "with-approval")
    plan = step(workflow, "plan")["task_id"]
    await wait_for_status(client, plan, {"running"})

    response = await client.post(f"/api/workflows/{workflow['id']}/cancel")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled" and cancelled["phase"] == "cancelled"
    assert step(cancelled, "plan")["run_status"] == "cancelled"
    parent = (await client.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
    assert parent["status"] == "todo"
    assert (await client.post(f"/api/workflows/{workflow['id']}/cancel")).status_code == 409
    agent_env.release_all()


async def test_starting_a_workflow_checks_the_template_and_the_inputs(client, tmp_path):
    project = await create_project(client)
    write_template(project, "three-steps", THREE_STEPS)
    write_template(
        project,
        "broken",
        "name: broken\ntitle: Broken\nsteps:\n  - id: a\n    title: A\n    prompt: go\n    needs: [b]\n",
    )

    def post(**body):
        return client.post("/api/workflows", json={"project_id": project["id"], **body})

    missing = await post(template="three-steps", inputs={})
    assert missing.status_code == 422 and "topic" in missing.text
    unknown = await post(template="three-steps", inputs={"topic": "x", "colour": "red"})
    assert unknown.status_code == 422 and "colour" in unknown.text
    assert (await post(template="no-such-template")).status_code == 404
    broken = await post(template="broken")
    assert broken.status_code == 422 and "broken.yaml:" in broken.text
    assert (await client.get("/api/workflows", params={"project_id": project["id"]})).json() == []

    catalog = (await client.get("/api/workflow-templates", params={"project_id": project["id"]})).json()
    names = {t["name"] for t in catalog["templates"]}
    assert {"three-steps", "research", "feature", "prototype", "bugfix"} <= names
    assert any("broken.yaml" in p["source"] and p["line"] for p in catalog["problems"])
    assert os.path.isdir(project["workspace_path"])


CRASH = """
    name: crash
    title: Survives a crash
    steps:
      - id: one
        title: Step one
        prompt: "[wf-crash-one] First."
        review: auto
      - id: two
        title: Step two
        needs: [one]
        prompt: "[wf-crash-two] Second, after: {{steps.one.result}}"
        review: auto
      - id: three
        title: Check step two
        kind: check
        needs: [two]
        command: test -f two.txt && echo two is there
"""


async def test_kill_9_mid_workflow_then_restart_continues_and_no_step_runs_twice(tmp_path):
    from tests.backend.test_run_faults import _serve, _wait_healthy
    from tests.conftest import free_port

    with FakeAnthropic() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        env.update(fake.env(max_retries=0))
        data_dir, port = tmp_path / "data", free_port()
        url = f"http://127.0.0.1:{port}"
        hang = Turn.hang(300)
        fake.add_script("[wf-crash-one]", [Turn.text("one is done")])
        fake.add_script("[wf-crash-two]", [Turn.tool_use("Write", {"file_path": "two.txt", "content": "2\n"}), hang])
        server = _serve(data_dir, port, env)
        try:
            await asyncio.to_thread(_wait_healthy, url, server)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                project = await create_project(http)
                write_template(project, "crash", CRASH)
                workflow = await start(http, project, "crash")
                await asyncio.to_thread(hang.wait_started, 90)
                await asyncio.sleep(0.5)
                two = step(workflow, "two")["task_id"]
                (run_two,) = await runs_of(http, two)
                assert run_two["status"] == "running" and run_two["session_id"]

            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
            fake.add_script(run_two["session_id"], [Turn.text("two is done after the restart")])
            hang.release()

            server = _serve(data_dir, port, env)
            await asyncio.to_thread(_wait_healthy, url, server)
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                done = await wait_for_workflow(http, workflow["id"], lambda w: w["status"] != "running", timeout=120)
                assert done["status"] == "done", done
                counts = {s["step_id"]: s["runs"] for s in done["steps"]}
                assert counts == {"one": 1, "two": 1, "three": 1}
                (resumed,) = await runs_of(http, two)
                assert resumed["id"] == run_two["id"] and resumed["status"] == "succeeded"
                parent = (await http.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
                assert parent["status"] == "done" and "two is there" in parent["result"]
            assert len(fake.main_requests("[wf-crash-one]")) == 1  # step one's one-turn conversation ran once
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(15)


SLOW_CHECK = """
    name: slow-check
    title: A slow check
    inputs:
      marker:
        type: string
      seconds:
        type: integer
    steps:
      - id: wait
        title: Wait
        kind: check
        command: "echo started {{marker}}; sleep {{seconds}} # {{marker}}"
        timeout_seconds: 5
"""


def _processes_with(marker: str) -> list[str]:
    import subprocess

    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    return found


async def test_a_check_over_its_time_limit_fails_and_leaves_no_process(client, tmp_path):
    project = await create_project(client)
    write_template(project, "slow-check", SLOW_CHECK)
    marker = f"slow-{os.getpid()}-{id(tmp_path)}"
    workflow = await start(client, project, "slow-check", marker=marker, seconds=60)
    run = await wait_for_status(client, step(workflow, "wait")["task_id"], {"succeeded", "failed"}, timeout=30)
    assert run["status"] == "failed" and run["kind"] == "check" and run["check_passed"] is False
    assert "did not finish within the time limit" in run["error"]
    checks = [e["payload"] for e in await all_events(client, run["id"]) if e["type"] == "check"]
    assert [c["status"] for c in checks] == ["running", "timed_out"] and f"started {marker}" in checks[-1]["output"]
    assert _processes_with(marker) == []


async def test_cancelling_a_check_stops_its_command(client, tmp_path):
    project = await create_project(client)
    write_template(project, "slow-check", SLOW_CHECK.replace("timeout_seconds: 5", "timeout_seconds: 600"))
    marker = f"cancel-{os.getpid()}-{id(tmp_path)}"
    workflow = await start(client, project, "slow-check", marker=marker, seconds=120)
    task_id = step(workflow, "wait")["task_id"]
    run = await wait_for_status(client, task_id, {"running"})
    deadline = asyncio.get_running_loop().time() + 20
    while not _processes_with(marker):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    began = asyncio.get_running_loop().time()
    response = await client.post(f"/api/runs/{run['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled", response.text
    assert asyncio.get_running_loop().time() - began < 5
    assert _processes_with(marker) == []


SETTINGS = """
    name: step-settings
    title: Per-step settings
    steps:
      - id: tuned
        title: Tuned
        prompt: "[wf-tuned] Work with the step's own settings."
        model: claude-haiku-4-5
        permission_mode: plan
        knowledge:
          read: [Style guide]
          write: Findings
      - id: plugged
        title: Plugged
        prompt: "[wf-plugged] Needs a plugin."
        plugins: [no-such-plugin]
"""


async def test_a_step_runs_with_its_own_settings_and_a_missing_plugin_fails_it_clearly(client, agent_env):
    project = await create_project(client)
    write_template(project, "step-settings", SETTINGS)
    agent_env.add_script("[wf-tuned]", [Turn.text("tuned done")])
    workflow = await start(client, project, "step-settings")
    tuned = await wait_for_status(client, step(workflow, "tuned")["task_id"], {"succeeded", "failed"})
    assert tuned["status"] == "succeeded", tuned["error"]
    (request,) = [r for r in agent_env.main_requests() if "[wf-tuned]" in r.all_text()][:1]
    assert request.model == "claude-haiku-4-5"
    system = str(request.body.get("system"))
    assert '"Style guide"' in system and 'add_note(collection="Findings")' in system
    init = next(e for e in await all_events(client, tuned["id"]) if e["type"] == "init")
    assert init["payload"]["permission_mode"] == "plan"

    plugged = await wait_for_status(client, step(workflow, "plugged")["task_id"], {"succeeded", "failed"})
    assert plugged["status"] == "failed"
    assert plugged["error"].startswith("This workflow step uses plugins that are not installed or are disabled")
    assert "no-such-plugin" in plugged["error"] and "Plugins page" in plugged["error"]


ENDS_WITH_APPROVAL = """
    name: ends-with-approval
    title: Ends with an approval
    steps:
      - id: report
        title: Write the report
        prompt: "[wf-report] Write the report."
        review: auto
      - id: review
        kind: approval
        title: Review the report
        needs: [report]
        prompt: "Review the report: {{steps.report.result}}"
      - id: nod
        kind: approval
        title: A nod
        needs: [report]
"""


async def test_a_workflow_that_ends_with_an_approval_returns_what_was_approved(client, agent_env: FakeAnthropic):
    """The built-in research and prototype workflows end with a person's review: waiting for
    the workflow's card must still give the report, not an empty result."""
    project = await create_project(client)
    write_template(project, "ends-with-approval", ENDS_WITH_APPROVAL)
    agent_env.add_script("[wf-report]", [Turn.text("Owls hoot at night [1].")])
    workflow = await start(client, project, "ends-with-approval")
    waiting = await wait_for_workflow(
        client, workflow["id"], lambda w: all(step(w, s)["status"] == "needs_review" for s in ("review", "nod"))
    )
    for step_id in ("review", "nod"):
        assert (await client.post(f"/api/tasks/{step(waiting, step_id)['task_id']}/approve")).status_code == 200
    done = await wait_for_workflow(client, workflow["id"], lambda w: w["status"] == "done")
    assert done["result"] == "## Review the report\n\nReview the report: Owls hoot at night [1]."
    parent = (await client.get(f"/api/tasks/{workflow['parent_task_id']}")).json()
    assert parent["result"] == done["result"]
    nod = (await client.get(f"/api/tasks/{step(waiting, 'nod')['task_id']}")).json()
    assert nod["result"] is None  # it showed nothing of its own to approve
