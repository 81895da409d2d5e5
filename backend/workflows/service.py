"""Workflows: a template instantiated on a project, and how its steps move on.

- `start` makes the workflow's card (in Running while its steps work) and one card per step
  (subtasks of it), linked by dependencies in the template's `needs`. Agent and check steps
  carry the intent to start by themselves once unblocked (`start_when_unblocked`), so the
  scheduler starts each step when every step it needs is done, like any blocked task.
- A workflow's state is its cards, their links and their runs: nothing lives in memory. The
  orchestrator calls `pending_work` on every pass and acts on what it finds, each in its own
  transaction that checks again under the task's lock: an approval step nothing blocks moves
  to Review (`open_approval`), a `review: auto` step whose run succeeded is accepted
  (`runs.service.accept_automatically`), and a workflow whose steps are all done is done
  (`complete`). A restart therefore picks up exactly where the database is.
- A step's prompt is rendered when it starts (`step_start`): its inputs and the results of
  the steps it needs, so what the agent was given is what its card shows.
- The template is stored with the workflow as it was when it started; editing the file later
  changes only new workflows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..errors import Conflict
from ..kit.queries import get_or_404
from ..models import AgentRun, RunStatus, StepKind, Task, TaskStatus, Workflow, WorkflowStatus
from ..models.base import utcnow
from ..projects import service as project_service
from ..tasks import dependencies
from ..tasks import service as task_service
from ..tasks.schemas import TaskCreate, WorkflowLink
from . import templates
from .schemas import (
    TemplateCatalog,
    TemplateInputRead,
    TemplateProblemRead,
    TemplateRead,
    TemplateStepRead,
    TemplateUntilRead,
    WorkflowCreate,
    WorkflowPhase,
    WorkflowProgress,
    WorkflowRead,
    WorkflowStepRead,
)
from .templates import ReviewMode, Step, Template

TITLE_CHARS = 200
DESCRIPTION_CHARS = 100_000
_FINISHED_BADLY = {RunStatus.failed.value, RunStatus.cancelled.value, RunStatus.interrupted.value}


def definition(workflow: Workflow) -> Template:
    """The template the workflow was started from, as it was then (validating the stored JSON
    takes well under a millisecond; a cache by id would be wrong for a process that opens more
    than one database)."""
    return Template.model_validate(workflow.definition)


# -- templates ------------------------------------------------------------------------------


def template_read(template: Template) -> TemplateRead:
    return TemplateRead(
        name=template.name,
        title=template.title,
        description=template.description,
        origin=template.origin.value,
        source=template.source,
        inputs=[TemplateInputRead.model_validate(item, from_attributes=True) for item in template.inputs],
        steps=[
            TemplateStepRead(
                id=step.id,
                title=step.title,
                kind=StepKind(step.kind.value),
                needs=list(step.needs),
                review=step.review.value if step.review else None,
                until=TemplateUntilRead.model_validate(step.until, from_attributes=True) if step.until else None,
                command=step.command,
            )
            for step in template.steps
        ],
    )


async def _workspace(session: AsyncSession, project_id: int | None) -> str | None:
    if project_id is None:
        return None
    return (await project_service.get(session, project_id)).workspace_path


async def catalog(session: AsyncSession, project_id: int | None, user_dir: Path | None) -> TemplateCatalog:
    """The templates a project can start (built-ins, the user's, the project's own), and the
    template files that could not be read."""
    workspace = await _workspace(session, project_id)
    found = await asyncio.to_thread(templates.discover, project_workspace=workspace, user_dir=user_dir)
    return TemplateCatalog(
        templates=[template_read(template) for template in found.templates],
        problems=[
            TemplateProblemRead(source=p.source, line=p.line, field=p.field, message=p.message) for p in found.problems
        ],
    )


# -- starting a workflow --------------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _default_title(template: Template, inputs: dict[str, str]) -> str:
    first = next((inputs[item.name] for item in template.inputs if inputs.get(item.name, "").strip()), "")
    line = first.strip().splitlines()[0] if first.strip() else ""
    return _clip(f"{template.title}: {line}" if line else template.title, TITLE_CHARS)


def _parent_description(template: Template, inputs: dict[str, str]) -> str:
    parts = [template.description.strip()] if template.description.strip() else []
    given = [f"- **{item.title}**: {inputs[item.name]}" for item in template.inputs if inputs.get(item.name)]
    if given:
        parts.append("Inputs:\n" + "\n".join(given))
    parts.append(f"Workflow template `{template.name}` ({template.source}); its steps are this card's subtasks.")
    return _clip("\n\n".join(parts), DESCRIPTION_CHARS)


def step_text(step: Step, inputs: dict[str, str], results: dict[str, str]) -> str:
    """What a step's card says: the prompt (agent, approval) or the command (check), filled in."""
    if step.kind == templates.StepKind.check:
        command = templates.render(step.command or "", inputs, results)
        return (
            f"Runs `{command}` in this task's worktree (timeout {step.timeout_seconds} s); it passes when it exits 0."
        )
    if step.kind == templates.StepKind.approval and not step.prompt.strip():
        return "A person approves this step in Review, or sends it back with what to change."
    return _clip(templates.render(step.prompt, inputs, results), DESCRIPTION_CHARS)


def _step_title(step: Step, inputs: dict[str, str]) -> str:
    title = " ".join(templates.render(step.title, inputs, {}).split())
    return _clip(title or step.id, TITLE_CHARS)


async def start(session: AsyncSession, data: WorkflowCreate, user_dir: Path | None) -> WorkflowRead:
    """Instantiate a template on a project: its card, a card per step, their links."""
    project = await task_service.lock_project(session, data.project_id)
    template = await asyncio.to_thread(
        templates.find, data.template, project_workspace=project.workspace_path, user_dir=user_dir
    )
    inputs = templates.resolve_inputs(template, data.inputs)
    now = utcnow()
    workflow = Workflow(
        project_id=project.id,
        template_name=template.name,
        title=data.title or _default_title(template, inputs),
        origin=template.origin.value,
        source=template.source,
        definition=template.model_dump(mode="json"),
        inputs=inputs,
        status=WorkflowStatus.running.value,
        created_at=now,
        updated_at=now,
    )
    session.add(workflow)
    await session.flush()
    parent = await task_service.create(
        session,
        TaskCreate(
            project_id=project.id,
            title=workflow.title,
            description=_parent_description(template, inputs),
            status=TaskStatus.in_progress,
        ),
        workflow=WorkflowLink(workflow_id=workflow.id),
    )
    workflow.parent_task_id = parent.id
    card_of: dict[str, int] = {}
    for step in template.ordered_steps():
        created = await task_service.create(
            session,
            TaskCreate(
                project_id=project.id,
                title=_step_title(step, inputs),
                description=step_text(step, inputs, {}),
                parent_id=parent.id,
                blocked_by=[card_of[need] for need in step.needs],
                start_when_unblocked=step.kind != templates.StepKind.approval,
            ),
            workflow=WorkflowLink(
                workflow_id=workflow.id, workflow_step=step.id, workflow_step_kind=StepKind(step.kind.value)
            ),
        )
        card_of[step.id] = created.id
    await session.flush()
    for task_id in card_of.values():  # approval steps that need nothing wait in Review at once
        await open_approval(session, task_id)
    return await read(session, workflow)


# -- reading ----------------------------------------------------------------------------------


async def get(session: AsyncSession, workflow_id: int, *, for_update: bool = False) -> Workflow:
    return await get_or_404(session, Workflow, workflow_id, "Workflow", for_update=for_update)


async def step_cards(session: AsyncSession, workflow_id: int) -> dict[str, Task]:
    tasks = await session.scalars(
        select(Task).where(Task.workflow_id == workflow_id, Task.workflow_step.is_not(None)).order_by(Task.id)
    )
    return {task.workflow_step: task for task in tasks if task.workflow_step is not None}


async def _run_facts(session: AsyncSession, task_ids: Sequence[int]) -> dict[int, tuple[int, AgentRun]]:
    """Per task: how many runs it had, and its newest run."""
    if not task_ids:
        return {}
    counts = dict(
        (
            await session.execute(
                select(AgentRun.task_id, func.count()).where(AgentRun.task_id.in_(task_ids)).group_by(AgentRun.task_id)
            )
        ).all()
    )
    newest = select(func.max(AgentRun.id)).where(AgentRun.task_id.in_(task_ids)).group_by(AgentRun.task_id)
    runs = (await session.scalars(select(AgentRun).where(AgentRun.id.in_(newest)))).all()
    return {run.task_id: (counts.get(run.task_id, 0), run) for run in runs}


def _step_reason(step: Step, task: Task | None, run: AgentRun | None, blocking: list[str]) -> str | None:
    if task is None:
        return "its card was deleted"
    if task.status == TaskStatus.done.value:
        return None
    if blocking:
        return "waits for " + "; ".join(blocking)
    if task.status == TaskStatus.needs_review.value:
        return "waits for a person in Review"
    if task.status == TaskStatus.todo.value and run is not None and run.status in _FINISHED_BADLY:
        first_line = (run.error or "").strip().splitlines()[0] if (run.error or "").strip() else ""
        return f"its run {run.status}" + (f": {first_line}" if first_line else "")
    return None


async def read(session: AsyncSession, workflow: Workflow) -> WorkflowRead:
    template = definition(workflow)
    cards = await step_cards(session, workflow.id)
    blockers = await dependencies.blockers_of(session, [task.id for task in cards.values()])
    facts = await _run_facts(session, [task.id for task in cards.values()])
    steps: list[WorkflowStepRead] = []
    stalled = needs_you = False
    for step in template.ordered_steps():
        task = cards.get(step.id)
        count, run = facts.get(task.id, (0, None)) if task is not None else (0, None)
        blocking = [b.reason or b.short_id for b in blockers.get(task.id, []) if b.blocking] if task else []
        reason = _step_reason(step, task, run, blocking)
        if task is None or (task.status == TaskStatus.todo.value and run is not None and run.status in _FINISHED_BADLY):
            stalled = True
        if task is not None and task.status == TaskStatus.needs_review.value:
            needs_you = True
        steps.append(
            WorkflowStepRead(
                step_id=step.id,
                title=task.title if task is not None else step.title,
                kind=StepKind(step.kind.value),
                needs=list(step.needs),
                review=step.review.value if step.review else None,
                task_id=task.id if task is not None else None,
                short_id=task.short_id if task is not None else None,
                status=TaskStatus(task.status) if task is not None else None,
                run_status=RunStatus(run.status) if run is not None else None,
                runs=count,
                max_attempts=step.until.max_attempts if step.until else None,
                blocked=bool(blocking) or task is None,
                reason=reason,
            )
        )
    done = sum(1 for item in steps if item.status == TaskStatus.done)
    current = [item.title for item in steps if item.status in (TaskStatus.in_progress, TaskStatus.needs_review)]
    status = WorkflowStatus(workflow.status)
    if status == WorkflowStatus.running:
        phase = WorkflowPhase.stalled if stalled else WorkflowPhase.needs_you if needs_you else WorkflowPhase.running
    else:
        phase = WorkflowPhase(status.value)
    parent = await session.get(Task, workflow.parent_task_id) if workflow.parent_task_id else None
    return WorkflowRead(
        id=workflow.id,
        project_id=workflow.project_id,
        parent_task_id=workflow.parent_task_id,
        template_name=workflow.template_name,
        title=workflow.title,
        origin=workflow.origin,
        source=workflow.source,
        status=status,
        phase=phase,
        inputs=dict(workflow.inputs),
        progress=WorkflowProgress(done=done, total=len(steps), current=current),
        steps=steps,
        result=parent.result if parent is not None and status == WorkflowStatus.done else None,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        finished_at=workflow.finished_at,
    )


async def get_read(session: AsyncSession, workflow_id: int) -> WorkflowRead:
    return await read(session, await get(session, workflow_id))


async def list_reads(session: AsyncSession, project_id: int, *, limit: int = 100) -> list[WorkflowRead]:
    await project_service.get(session, project_id)
    workflows = await session.scalars(
        select(Workflow).where(Workflow.project_id == project_id).order_by(Workflow.id.desc()).limit(limit)
    )
    return [await read(session, workflow) for workflow in workflows]


# -- a step starting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepContext:
    """A workflow step's card: its workflow, the step as the template says, the inputs."""

    workflow: Workflow
    step: Step

    @property
    def review(self) -> ReviewMode | None:
        return self.step.review


async def context_of(session: AsyncSession, task: Task) -> StepContext | None:
    """The step a card is, or None for a card outside a workflow (and for a workflow's own card)."""
    if task.workflow_id is None or task.workflow_step is None:
        return None
    workflow = await session.get(Workflow, task.workflow_id)
    if workflow is None:
        return None
    template = definition(workflow)
    step = next((item for item in template.steps if item.id == task.workflow_step), None)
    return StepContext(workflow, step) if step is not None else None


def refuse_to_run_workflow_card(task: Task) -> None:
    if task.workflow_id is not None and task.workflow_step is None:
        raise Conflict(f"Task {task.short_id} is a workflow's card: its steps (its subtasks) run, not the card itself")


async def results(session: AsyncSession, workflow_id: int) -> dict[str, str]:
    """The results of a workflow's steps that are done, by step id."""
    rows = await session.execute(
        select(Task.workflow_step, Task.result).where(
            Task.workflow_id == workflow_id, Task.workflow_step.is_not(None), Task.status == TaskStatus.done.value
        )
    )
    return {step: (result or "").strip() for step, result in rows.all() if step is not None}


async def render_step(session: AsyncSession, task: Task, context: StepContext) -> str:
    """Fill in the step's prompt (or command) with the inputs and the results of the steps it
    needs, and show it on the card: the agent gets what the card says. Returns it."""
    done = await results(session, context.workflow.id)
    text = step_text(context.step, dict(context.workflow.inputs), done)
    if task.description != text:
        task.description = text
        await task_service.touch(session, task)
    return text


def check_command(context: StepContext, *, until: bool) -> str:
    """The filled-in command of a check step, or of an agent step's `until`."""
    raw = (context.step.until.check if until and context.step.until else context.step.command) or ""
    return templates.render(raw, dict(context.workflow.inputs), {})


# -- moving on: what the scheduler does on every pass ------------------------------------------


@dataclass
class PendingWork:
    approvals: list[int]  # approval steps nothing blocks, still in To Do
    auto_review: list[int]  # `review: auto` steps in Review
    complete: list[int]  # workflows whose steps are all done


async def pending_work(session: AsyncSession) -> PendingWork:
    """What running workflows need done next (read only; each item is acted on in its own
    transaction, which checks again)."""
    work = PendingWork([], [], [])
    running = (await session.scalars(select(Workflow).where(Workflow.status == WorkflowStatus.running.value))).all()
    if not running:
        return work
    by_id = {workflow.id: workflow for workflow in running}
    rows = (
        await session.execute(
            select(Task.id, Task.workflow_id, Task.workflow_step, Task.workflow_step_kind, Task.status).where(
                Task.workflow_id.in_(list(by_id)), Task.workflow_step.is_not(None)
            )
        )
    ).all()
    done_count: dict[int, int] = {}
    todo_approvals = []
    for task_id, workflow_id, step_id, kind, status in rows:
        assert workflow_id is not None  # selected by it
        if status == TaskStatus.done.value:
            done_count[workflow_id] = done_count.get(workflow_id, 0) + 1
        elif kind == StepKind.approval.value and status == TaskStatus.todo.value:
            todo_approvals.append(task_id)
        elif status == TaskStatus.needs_review.value and kind != StepKind.approval.value:
            step = next((s for s in definition(by_id[workflow_id]).steps if s.id == step_id), None)
            if step is not None and step.review == ReviewMode.auto:
                work.auto_review.append(task_id)
    if todo_approvals:
        blockers = await dependencies.blockers_of(session, todo_approvals)
        work.approvals = [t for t in todo_approvals if not any(b.blocking for b in blockers.get(t, []))]
    work.complete = [
        workflow.id for workflow in running if done_count.get(workflow.id, 0) >= len(definition(workflow).steps)
    ]
    return work


async def _lock_task(session: AsyncSession, task_id: int | None) -> Task | None:
    if task_id is None:
        return None
    return await session.scalar(select(Task).where(Task.id == task_id).with_for_update())


async def open_approval(session: AsyncSession, task_id: int) -> bool:
    """An approval step that nothing blocks moves to Review, its card showing what to approve
    (the prompt with the results it needs). True when it moved."""
    task = await session.scalar(select(Task).where(Task.id == task_id).with_for_update())
    if task is None or task.workflow_step_kind != StepKind.approval.value or task.status != TaskStatus.todo.value:
        return False
    await task_service.lock_project(session, task.project_id)
    await session.refresh(task)
    context = await context_of(session, task)
    if context is None or context.workflow.status != WorkflowStatus.running.value:
        return False
    if task.status != TaskStatus.todo.value or await dependencies.open_blockers(session, task.id):
        return False
    await render_step(session, task, context)
    await task_service.transition(session, task, TaskStatus.needs_review)
    return True


def _final_result(template: Template, done: dict[str, str]) -> str:
    needed = {need for step in template.steps for need in step.needs}
    finals = [step for step in template.ordered_steps() if step.id not in needed]
    texts = [(step, done.get(step.id, "")) for step in finals]
    if len(texts) == 1:
        return texts[0][1]
    return "\n\n".join(f"## {step.title}\n\n{text}" for step, text in texts if text)


async def complete(session: AsyncSession, workflow_id: int) -> bool:
    """A workflow whose steps are all done is done; its card gets the final steps' results
    (what `wait_for_task` on the card returns). True when it completed now."""
    workflow = await session.scalar(select(Workflow).where(Workflow.id == workflow_id).with_for_update())
    if workflow is None or workflow.status != WorkflowStatus.running.value:
        return False
    template = definition(workflow)
    cards = await step_cards(session, workflow.id)
    if len(cards) < len(template.steps) or any(t.status != TaskStatus.done.value for t in cards.values()):
        return False
    result = _final_result(template, await results(session, workflow.id))
    parent = await _lock_task(session, workflow.parent_task_id)
    if parent is not None:
        await task_service.transition(session, parent, TaskStatus.done, result=result)
    workflow.status = WorkflowStatus.done.value
    workflow.finished_at = workflow.updated_at = utcnow()
    await session.flush()
    return True


async def mark_cancelled(session: AsyncSession, workflow_id: int) -> list[Task]:
    """Cancel a workflow's cards: no step starts by itself any more, its card goes back to To
    Do. Returns the step cards (the caller cancels their active runs)."""
    workflow = await get(session, workflow_id, for_update=True)
    if workflow.status != WorkflowStatus.running.value:
        raise Conflict(f"Workflow {workflow_id} is already {workflow.status}")
    # Rows in the order every writer takes them: the tasks, then their project.
    await session.execute(select(Task.id).where(Task.workflow_id == workflow.id).order_by(Task.id).with_for_update())
    await task_service.lock_project(session, workflow.project_id)
    cards = list((await step_cards(session, workflow.id)).values())
    for task in cards:
        if task.start_when_unblocked:
            task.start_when_unblocked = False
            await task_service.touch(session, task)
    parent = await session.get(Task, workflow.parent_task_id) if workflow.parent_task_id else None
    if parent is not None and parent.status != TaskStatus.done.value:
        await task_service.transition(session, parent, TaskStatus.todo, result="Cancelled.")
    workflow.status = WorkflowStatus.cancelled.value
    workflow.finished_at = workflow.updated_at = utcnow()
    await session.flush()
    return cards
