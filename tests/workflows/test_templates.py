"""Workflow templates: the format, every problem with its line and field, discovery, inputs, placeholders."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from backend.errors import InvalidInput, NotFound
from backend.workflows.templates import (
    DEFAULT_TIMEOUT_SECONDS,
    MAX_TEMPLATE_BYTES,
    InputType,
    Problem,
    ReviewMode,
    StepKind,
    Template,
    TemplateInvalid,
    TemplateOrigin,
    discover,
    find,
    load_file,
    parse,
    placeholders,
    render,
    resolve_inputs,
)

BUILTINS = ["bugfix", "feature", "prototype", "research"]

FULL = """\
name: feature
title: Build a feature
description: Plan, approve the plan, implement until the tests pass, review.
inputs:
  feature:
    title: What to build
    type: text
    description: The feature.
  test_command:
    type: string
    default: make test
  level:
    type: choice
    options: [low, high]
    default: low
  retries:
    type: integer
    required: false
steps:
  - id: plan
    title: Plan {{feature}}
    kind: agent
    prompt: |
      Write a plan for: {{ feature }}
    review: auto
    needs: []
    model: claude-sonnet-4-5
    permission_mode: plan
    max_turns: 30
    max_budget_usd: 2.5
    plugins: [fetch]
    knowledge:
      read: [SQLite internals]
      write: SQLite internals
  - id: approve-plan
    title: Approve the plan
    kind: approval
    needs: [plan]
    prompt: "Approve: {{steps.plan.result}}"
  - id: implement
    title: Implement {{feature}}
    needs: [approve-plan]
    prompt: |
      The plan: {{steps.plan.result}}
    until:
      check: "{{test_command}}"
      max_attempts: 5
  - id: tests
    kind: check
    needs: [implement]
    title: Run {{test_command}}
    command: "{{test_command}} --level {{level}}"
"""


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(TemplateInvalid) as caught:
        parse(text, source="t.yaml", origin=TemplateOrigin.user)
    return caught.value.problems


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def simple(name: str, title: str) -> str:
    return f"name: {name}\ntitle: {title}\nsteps:\n  - id: only\n    title: Only\n    prompt: Do it.\n"


# --- the format ------------------------------------------------------------------------------


def test_a_full_template_reads_with_its_defaults_filled_in():
    template = parse(FULL, source="t.yaml", origin=TemplateOrigin.project)
    assert (template.name, template.title, template.origin, template.source) == (
        "feature",
        "Build a feature",
        TemplateOrigin.project,
        "t.yaml",
    )
    assert [(i.name, i.title, i.type, i.required, i.default) for i in template.inputs] == [
        ("feature", "What to build", InputType.text, True, None),
        ("test_command", "test_command", InputType.string, False, "make test"),
        ("level", "level", InputType.choice, False, "low"),
        ("retries", "retries", InputType.integer, False, None),
    ]
    assert template.inputs[2].options == ["low", "high"]
    plan, approve, implement, tests = template.steps
    assert (plan.kind, plan.review, plan.permission_mode, plan.max_turns, plan.max_budget_usd) == (
        StepKind.agent,
        ReviewMode.auto,
        "plan",
        30,
        2.5,
    )
    assert plan.prompt == "Write a plan for: {{ feature }}"
    assert plan.plugins == ["fetch"]
    assert plan.knowledge is not None and plan.knowledge.read == ["SQLite internals"]
    assert (approve.kind, approve.review, approve.needs) == (StepKind.approval, None, ["plan"])
    assert implement.review is ReviewMode.human
    assert implement.until is not None
    assert (implement.until.check, implement.until.max_attempts, implement.until.timeout_seconds) == (
        "{{test_command}}",
        5,
        600,
    )
    assert (tests.kind, tests.review, tests.prompt, tests.timeout_seconds) == (
        StepKind.check,
        ReviewMode.auto,
        "",
        DEFAULT_TIMEOUT_SECONDS,
    )
    assert implement.timeout_seconds is None and plan.command is None
    assert template.step("tests") is tests


def test_a_template_round_trips_through_json():
    """A workflow keeps the template it was made from as JSON and reads it back."""
    template = parse(FULL, source="t.yaml", origin=TemplateOrigin.user)
    assert Template.model_validate(template.model_dump(mode="json")) == template


def test_empty_values_mean_not_given():
    text = """\
    name: empty
    title: Empty
    description:
    inputs:
      topic:
    steps:
      - id: only
        title: "About {{topic}}"
        prompt: go
        needs:
        plugins:
    """
    template = parse(textwrap.dedent(text), source="t.yaml", origin=TemplateOrigin.user)
    assert template.description == ""
    assert [(i.name, i.type, i.required, i.title) for i in template.inputs] == [
        ("topic", InputType.string, True, "topic")
    ]
    assert (template.steps[0].needs, template.steps[0].plugins, template.steps[0].review) == (
        [],
        None,
        ReviewMode.human,
    )


def test_ordered_steps_put_each_step_after_its_needs_and_keep_the_file_order_otherwise():
    text = """\
    name: order
    title: Order
    steps:
      - {id: deploy, title: Deploy, prompt: go, needs: [build, docs]}
      - {id: docs, title: Docs, prompt: go}
      - {id: build, title: Build, prompt: go, needs: [fetch]}
      - {id: lint, title: Lint, prompt: go}
      - {id: fetch, title: Fetch, prompt: go}
    """
    template = parse(textwrap.dedent(text), source="t.yaml", origin=TemplateOrigin.user)
    assert [s.id for s in template.ordered_steps()] == ["docs", "lint", "fetch", "build", "deploy"]
    with pytest.raises(NotFound, match="no step 'nope'; steps: deploy, docs, build, lint, fetch"):
        template.step("nope")


@pytest.mark.parametrize("name", BUILTINS)
def test_each_builtin_template_reads(name):
    template = find(name, project_workspace=None, user_dir=None)
    assert template.origin is TemplateOrigin.builtin
    assert template.source == f"builtin:{name}.yaml"
    assert all(step.kind is not StepKind.agent or step.prompt for step in template.steps)
    assert "commit" in " ".join(s.prompt for s in template.steps if s.kind is StepKind.agent)


def test_the_builtin_templates_have_the_steps_they_promise():
    by_name = {t.name: t for t in discover(project_workspace=None, user_dir=None).templates}
    assert sorted(by_name) == BUILTINS
    feature = by_name["feature"]
    assert [(s.id, s.kind, s.review, s.needs) for s in feature.steps] == [
        ("plan", StepKind.agent, ReviewMode.auto, []),
        ("approve-plan", StepKind.approval, None, ["plan"]),
        ("implement", StepKind.agent, ReviewMode.human, ["approve-plan"]),
    ]
    assert feature.steps[0].permission_mode == "plan"
    assert feature.steps[2].until is not None and feature.steps[2].until.check == "{{test_command}}"
    assert "{{steps.plan.result}}" in feature.steps[1].prompt
    research = by_name["research"]
    assert [s.id for s in research.ordered_steps()] == ["frame", "gather", "synthesise", "save", "review"]
    # The person reviews the report as the save step saved it; feedback goes to that step.
    assert "{{steps.save.result}}" in research.step("review").prompt
    assert (
        "{{steps.synthesise.result}}" in research.step("save").prompt and "supersedes" in research.step("save").prompt
    )
    assert "search_knowledge" in research.step("gather").prompt and "add_note" in research.step("save").prompt
    assert [i.name for i in research.inputs if not i.required] == ["scope"]
    prototype = by_name["prototype"]
    smoke = prototype.inputs[1]
    assert (smoke.name, smoke.required, smoke.default) == ("smoke_command", True, None)
    assert prototype.step("build").until is not None and prototype.step("demo").kind is StepKind.approval
    bugfix = by_name["bugfix"]
    assert [(s.id, s.review) for s in bugfix.steps] == [("reproduce", ReviewMode.auto), ("fix", ReviewMode.human)]
    assert bugfix.step("fix").until is not None
    assert not bugfix.step("reproduce").merge and bugfix.step("fix").merge  # the failing test lands with its fix


# --- problems: each with its line and field --------------------------------------------------

# Each case's YAML marks the line the problem is on with `#<`.
BROKEN = [
    (
        "syntax error",
        """\
        name: x
        title: a: b  #<
        steps: []
        """,
        "yaml",
        "mapping values are not allowed here",
    ),
    (
        "top level is a list",
        """\
        - name: x  #<
        - title: y
        """,
        "(top level)",
        "a template is a mapping (name:, title:, steps:), not a list",
    ),
    (
        "unknown key in a step",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            kind2: agent  #<
            prompt: Plan it.
        """,
        "steps[0].kind2",
        "unknown key kind2 (did you mean kind?)",
    ),
    (
        "unknown key at the top",
        """\
        name: x
        title: X
        stepz: []  #<
        steps:
          - {id: plan, title: Plan, prompt: go}
        """,
        "stepz",
        "unknown key stepz (did you mean steps?); known keys: name, title, description, inputs, steps",
    ),
    (
        "unknown kind",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            kind: agnet  #<
            prompt: Plan it.
        """,
        "steps[0].kind",
        "must be one of 'agent', 'check' or 'approval' (not 'agnet')",
    ),
    (
        "needs a missing step",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - id: build
            title: Build
            prompt: go
            needs:
              - plann  #<
        """,
        "steps[1].needs[0]",
        "no step named 'plann'; steps: plan, build",
    ),
    (
        "needs itself",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            needs: [plan]  #<
        """,
        "steps[0].needs[0]",
        "a step cannot need itself",
    ),
    (
        "a cycle of three",
        """\
        name: x
        title: X
        steps:
          - {id: a, title: A, prompt: go, needs: [c]}
          - {id: b, title: B, prompt: go, needs: [a]}  #<
          - {id: c, title: C, prompt: go, needs: [b]}
        """,
        "steps[1].needs[0]",
        "needs make a cycle: a → c → b → a",
    ),
    (
        "a placeholder naming no input, in a block",
        """\
        name: x
        title: X
        inputs:
          feature: {type: text}
          test_command: {default: make test}
        steps:
          - id: plan
            title: Plan
            prompt: |
              Plan this:

              Build {{feture}} well.  #<
        """,
        "steps[0].prompt",
        "no input named feture; inputs: feature, test_command",
    ),
    (
        "a result of a step that is not needed",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - {id: other, title: Other, prompt: go}
          - id: build
            title: Build
            needs: [other]
            prompt: "Follow {{ steps.plan.result }}"  #<
        """,
        "steps[2].prompt",
        "this step does not need plan (directly or through the steps it needs)",
    ),
    (
        "a result of a step that does not exist",
        """\
        name: x
        title: X
        steps:
          - id: build
            title: Build
            prompt: "Follow {{steps.plna.result}}"  #<
        """,
        "steps[0].prompt",
        "{{steps.plna.result}}: no step named 'plna'; steps: build",
    ),
    (
        "a result in a title",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - {id: build, needs: [plan], prompt: go, title: "Build {{steps.plan.result}}"}  #<
        """,
        "steps[1].title",
        "a step's result can only be used in a prompt (a title is set when the workflow starts",
    ),
    (
        "a result in a command",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - id: run
            title: Run
            kind: check
            needs: [plan]
            command: "sh -c '{{steps.plan.result}}'"  #<
        """,
        "steps[1].command",
        "an agent's words never become part of a command",
    ),
    (
        "max_turns is not a number",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            max_turns: "ten"  #<
        """,
        "steps[0].max_turns",
        "must be a whole number (not 'ten')",
    ),
    (
        "max_turns out of range",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            max_turns: 1001  #<
        """,
        "steps[0].max_turns",
        "must be at most 1000 (not 1001)",
    ),
    (
        "max_attempts is 0",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            until:
              check: make test
              max_attempts: 0  #<
        """,
        "steps[0].until.max_attempts",
        "must be at least 1 (not 0)",
    ),
    (
        "max_budget_usd is 0",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go, max_budget_usd: 0}  #<
        """,
        "steps[0].max_budget_usd",
        "must be more than 0",
    ),
    (
        "an unknown permission mode",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            permission_mode: yolo  #<
        """,
        "steps[0].permission_mode",
        "must be one of 'default', 'acceptEdits', 'plan' or 'bypassPermissions' (not 'yolo')",
    ),
    (
        "duplicate step id",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - {id: build, title: Build, prompt: go}
          - {id: plan, title: Plan again, prompt: go}  #<
        """,
        "steps[2].id",
        "duplicate step id plan: steps[0] (line 4) has it too",
    ),
    (
        "duplicate key",
        """\
        name: x
        title: X
        steps:
          - id: plan
            title: Plan
            prompt: go
            title: Plan again  #<
        """,
        "steps[0].title",
        "duplicate key (first at line 5); YAML would keep only the last one",
    ),
    (
        "check without command",
        """\
        name: x
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
          - id: tests  #<
            title: Tests
            kind: check
            needs: [plan]
        """,
        "steps[1].command",
        "a check step needs a command",
    ),
    (
        "agent without prompt",
        """\
        name: x
        title: X
        steps:
          - id: plan  #<
            title: Plan
        """,
        "steps[0].prompt",
        "an agent step needs a prompt",
    ),
    (
        "choice without options",
        """\
        name: x
        title: X
        inputs:
          level:  #<
            type: choice
        steps:
          - {id: plan, title: Plan, prompt: "{{level}}"}
        """,
        "inputs.level",
        "a choice needs options",
    ),
    (
        "options on a string",
        """\
        name: x
        title: X
        inputs:
          level:
            type: string
            options: [a, b]  #<
        steps:
          - {id: plan, title: Plan, prompt: "{{level}}"}
        """,
        "inputs.level.options",
        "options are only for type choice (this input is string)",
    ),
    (
        "default not in options",
        """\
        name: x
        title: X
        inputs:
          level:
            type: choice
            options: [low, high]
            default: medium  #<
        steps:
          - {id: plan, title: Plan, prompt: "{{level}}"}
        """,
        "inputs.level.default",
        "'medium' is not one of the options: low, high",
    ),
    (
        "default of the wrong type",
        """\
        name: x
        title: X
        inputs:
          count:
            type: integer
            default: many  #<
        steps:
          - {id: plan, title: Plan, prompt: "{{count}}"}
        """,
        "inputs.count.default",
        "must be an integer (not 'many')",
    ),
    (
        "a boolean YAML read where text was meant",
        """\
        name: x
        title: X
        inputs:
          answer:
            default: yes  #<
        steps:
          - {id: plan, title: Plan, prompt: "{{answer}}"}
        """,
        "inputs.answer.default",
        "YAML read True as true/false: put it in quotes",
    ),
    (
        "an unknown input type",
        """\
        name: x
        title: X
        inputs:
          count:
            type: int  #<
        steps:
          - {id: plan, title: Plan, prompt: "{{count}}"}
        """,
        "inputs.count.type",
        "must be one of 'string', 'text', 'integer', 'number', 'boolean' or 'choice' (not 'int')",
    ),
    (
        "a bad input name",
        """\
        name: x
        title: X
        inputs:
          Test-Command: {}  #<
        steps:
          - {id: plan, title: Plan, prompt: go}
        """,
        "inputs.Test-Command",
        "input names are lowercase letters, digits and _, starting with a letter",
    ),
    (
        "review on approval",
        """\
        name: x
        title: X
        steps:
          - id: ok
            title: OK?
            kind: approval
            review: human  #<
        """,
        "steps[0].review",
        "an approval step has no review",
    ),
    (
        "merge false without review auto",
        """\
        name: x
        title: X
        steps:
          - id: work
            title: Work
            prompt: Do it.
            merge: false  #<
        """,
        "steps[0].merge",
        "merge: false needs review: auto",
    ),
    (
        "merge on check",
        """\
        name: x
        title: X
        steps:
          - id: tests
            title: Tests
            kind: check
            command: make test
            merge: false  #<
        """,
        "steps[0].merge",
        "merge is only for agent steps",
    ),
    (
        "until on check",
        """\
        name: x
        title: X
        steps:
          - id: tests
            title: Tests
            kind: check
            command: make test
            until:  #<
              check: make lint
        """,
        "steps[0].until",
        "until is only for agent steps: a check step is a check already",
    ),
    (
        "a prompt on a check",
        """\
        name: x
        title: X
        steps:
          - id: tests
            title: Tests
            kind: check
            command: make test
            prompt: Run the tests.  #<
        """,
        "steps[0].prompt",
        "a check step has no prompt",
    ),
    (
        "a model on an approval",
        """\
        name: x
        title: X
        steps:
          - id: ok
            title: OK?
            kind: approval
            model: claude-opus-4  #<
        """,
        "steps[0].model",
        "model is only for agent steps",
    ),
    (
        "empty steps",
        """\
        name: x
        title: X
        steps: []  #<
        """,
        "steps",
        "needs at least 1 item",
    ),
    (
        "no steps at all",
        """\
        name: x  #<
        title: X
        """,
        "steps",
        "is required",
    ),
    (
        "a bad template name",
        """\
        name: My Feature  #<
        title: X
        steps:
          - {id: plan, title: Plan, prompt: go}
        """,
        "name",
        "must be lowercase letters, digits and -, starting with a letter, at most 40 characters (not 'My Feature')",
    ),
    (
        "an unquoted placeholder at the start of a value",
        """\
        name: x
        title: X
        inputs:
          feature: {}
        steps:
          - id: plan
            title: {{feature}}  #<
            prompt: go
        """,
        "yaml",
        'a value that starts with { must be in quotes: "{{name}} ..."',
    ),
    (
        "a step that is not a mapping",
        """\
        name: x
        title: X
        steps:
          - plan  #<
        """,
        "steps[0]",
        "must be a mapping (key: value lines) (not 'plan')",
    ),
    (
        "a title that is a number",
        """\
        name: x
        title: 2024  #<
        steps:
          - {id: plan, title: Plan, prompt: go}
        """,
        "title",
        "must be text (YAML read 2024 as a number: put it in quotes)",
    ),
]


@pytest.mark.parametrize(("text", "field", "phrase"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_a_broken_template_is_reported_with_its_line_and_field(text, field, phrase):
    text = textwrap.dedent(text)
    line = next(number for number, content in enumerate(text.splitlines(), 1) if content.endswith("#<"))
    problems = problems_of(text)
    assert [(p.line, p.field) for p in problems if phrase in p.message] == [(line, field)], problems


def test_every_problem_is_reported_at_once_in_line_order():
    text = """\
    name: x
    title: X
    steps:
      - {id: build, title: "Build {{feture}}", prompt: go, needs: [plan]}
      - {id: plan, title: Plan, prompt: go, max_turns: 0, needs: [build]}
      - {id: check, kind: check, title: Check}
    """
    problems = problems_of(textwrap.dedent(text))
    assert [(p.line, p.field, p.message) for p in problems] == [
        (4, "steps[0].title", "no input named feture; inputs: this template has none"),
        (5, "steps[1].max_turns", "must be at least 1 (not 0)"),
        (5, "steps[1].needs[0]", "needs make a cycle: build → plan → build"),
        (6, "steps[2].command", "a check step needs a command (it passes when the command exits 0)"),
    ]


def test_the_error_names_the_file_and_every_problem():
    with pytest.raises(TemplateInvalid) as caught:
        parse("name: x\ntitle: X\nsteps: []\nextra: 1\n", source="my.yaml", origin=TemplateOrigin.user)
    error = caught.value
    assert isinstance(error, InvalidInput) and error.status_code == 422
    assert error.message.splitlines() == [
        "The workflow template my.yaml is not valid (2 problems):",
        "my.yaml:3: steps: needs at least 1 item",
        "my.yaml:4: extra: unknown key extra; known keys: name, title, description, inputs, steps",
    ]
    assert error.to_dict()["problems"][0] == {
        "source": "my.yaml",
        "line": 3,
        "field": "steps",
        "message": "needs at least 1 item",
    }
    assert str(Problem("a.yaml", None, "(file)", "is larger than 256 KiB")) == "a.yaml: (file): is larger than 256 KiB"


def test_an_empty_file_and_a_scalar_file_are_refused():
    assert [(p.field, p.message) for p in problems_of("# nothing here\n")] == [
        ("(top level)", "the file is empty: a template needs name, title and steps")
    ]
    assert [(p.line, p.field) for p in problems_of("just words\n")] == [(1, "(top level)")]


def test_anchors_and_merge_keys_work_and_an_alias_bomb_does_not_hang():
    text = """\
    name: x
    title: X
    steps:
      - &base {id: plan, title: Plan, prompt: go, max_turns: 5}
      - <<: *base
        id: build
        needs: [plan]
    """
    template = parse(textwrap.dedent(text), source="t.yaml", origin=TemplateOrigin.user)
    assert [(s.id, s.max_turns, s.needs) for s in template.steps] == [("plan", 5, []), ("build", 5, ["plan"])]
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    problems = problems_of(f"{bomb}name: x\ntitle: X\nsteps:\n  - {{id: plan, title: Plan, prompt: go, plugins: *i}}\n")
    assert {p.field for p in problems} == {*(f"steps[0].plugins[{i}]" for i in range(9)), *"abcdefghi"}
    assert problems[-1].message == "must be text (not [[...], [...], [...], [...], ...])"


def test_load_file_refuses_unreadable_large_and_non_utf8_files(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TemplateInvalid, match="missing.yaml: \\(file\\): cannot be read"):
        load_file(missing, TemplateOrigin.user)
    big = tmp_path / "big.yaml"
    big.write_text(simple("big", "Big") + "# " + "x" * MAX_TEMPLATE_BYTES + "\n")
    with pytest.raises(TemplateInvalid, match="is larger than 256 KiB"):
        load_file(big, TemplateOrigin.user)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: x\ntitle: Caf\xe9\n")
    with pytest.raises(TemplateInvalid) as caught:
        load_file(latin, TemplateOrigin.user)
    assert [(p.line, p.message) for p in caught.value.problems] == [(2, "is not UTF-8 text (byte 0xe9)")]
    latin.write_bytes(b"\xef\xbb\xbfname: x\ntitle: X\nsteps: [caf\xe9]\n")
    with pytest.raises(TemplateInvalid) as caught:
        load_file(latin, TemplateOrigin.user)
    assert [(p.line, p.message) for p in caught.value.problems] == [(3, "is not UTF-8 text (byte 0xe9)")]
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + simple("bom", "With a byte order mark").encode())
    assert load_file(bom, TemplateOrigin.user).name == "bom"
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(TemplateInvalid, match="is not a regular file"):
        load_file(fifo, TemplateOrigin.user)
    good = write(tmp_path, "good.yaml", simple("good", "Good"))
    assert load_file(good, TemplateOrigin.project).source == str(good)


# --- discovery -------------------------------------------------------------------------------


def test_project_templates_replace_user_ones_which_replace_builtin_ones(tmp_path):
    user = tmp_path / "user"
    workspace = tmp_path / "repo"
    project = workspace / ".kanban" / "workflows"
    write(user, "feature.yaml", simple("feature", "The user's feature"))
    write(user, "mine.yml", simple("mine", "Mine"))
    write(user, "notes.txt", "not a template")
    write(project, "my-feature.yaml", simple("feature", "The project's feature"))
    write(project, "research.yml", simple("research", "The project's research"))
    found = discover(project_workspace=str(workspace), user_dir=user)
    assert found.problems == []
    assert [(t.name, t.origin, t.title) for t in found.templates] == [
        ("bugfix", TemplateOrigin.builtin, "Fix a bug"),
        ("feature", TemplateOrigin.project, "The project's feature"),
        ("prototype", TemplateOrigin.builtin, "Prototype an idea"),
        ("research", TemplateOrigin.project, "The project's research"),
        ("mine", TemplateOrigin.user, "Mine"),
    ]
    assert found.templates[1].source == str(project / "my-feature.yaml")
    assert find("feature", project_workspace=None, user_dir=user).title == "The user's feature"
    assert find("feature", project_workspace=workspace, user_dir=None).title == "The project's feature"


def test_a_broken_file_is_listed_and_the_others_still_load(tmp_path):
    user = tmp_path / "user"
    broken = write(user, "broken.yaml", "name: broken\ntitle: Broken\nsteps:\n  - {id: a, title: A, kind: nope}\n")
    write(user, "fine.yaml", simple("fine", "Fine"))
    write(user, "garbage.yaml", "name: [unclosed\n")
    found = discover(project_workspace=tmp_path / "no-such-repo", user_dir=user)
    assert [t.name for t in found.templates] == [*BUILTINS, "fine"]
    assert [(p.source, p.line, p.field) for p in found.problems] == [
        (str(broken), 4, "steps[0].kind"),
        (str(user / "garbage.yaml"), 2, "yaml"),
    ]
    with pytest.raises(TemplateInvalid, match="broken.yaml:4: steps\\[0\\].kind: must be one of"):
        find("broken", project_workspace=None, user_dir=user)
    with pytest.raises(TemplateInvalid, match="garbage.yaml:2: yaml"):
        find("garbage", project_workspace=None, user_dir=user)


def test_a_broken_override_stands_for_its_name(tmp_path):
    """A project that replaces `feature` with a broken file gets the problem, not the built-in."""
    workspace = tmp_path / "repo"
    write(workspace / ".kanban" / "workflows", "feature.yaml", "name: feature\ntitle: Mine\nsteps: []\n")
    found = discover(project_workspace=workspace, user_dir=None)
    assert "feature" not in [t.name for t in found.templates]
    assert [p.field for p in found.problems] == ["steps"]
    with pytest.raises(TemplateInvalid, match="needs at least 1 item"):
        find("feature", project_workspace=workspace, user_dir=None)


def test_two_files_with_one_name_in_a_place(tmp_path):
    user = tmp_path / "user"
    write(user, "a.yaml", simple("same", "First"))
    second = write(user, "b.yaml", "# the second\n" + simple("same", "Second"))
    found = discover(project_workspace=None, user_dir=user)
    assert [t.title for t in found.templates if t.name == "same"] == ["First"]
    assert [(p.source, p.line, p.field, p.message) for p in found.problems] == [
        (str(second), 2, "name", f"same is the name of {user / 'a.yaml'} too, which is the one offered")
    ]


def test_find_names_the_templates_there_are(tmp_path):
    user = write(tmp_path / "user", "mine.yaml", simple("mine", "Mine")).parent
    with pytest.raises(NotFound) as caught:
        find("featur", project_workspace=None, user_dir=user)
    assert (
        caught.value.message
        == "No workflow template named 'featur'; templates: bugfix, feature, mine, prototype, research"
    )


def test_missing_folders_are_fine(tmp_path):
    found = discover(project_workspace=tmp_path / "nothing", user_dir=tmp_path / "nobody")
    assert ([t.name for t in found.templates], found.problems) == (BUILTINS, [])


# --- inputs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def typed() -> Template:
    text = """\
    name: typed
    title: Typed
    inputs:
      feature: {type: text}
      command: {default: make test}
      count: {type: integer, default: 3}
      ratio: {type: number, required: false}
      verbose: {type: boolean, default: false}
      level: {type: choice, options: [low, high], default: low}
      note: {required: false}
    steps:
      - {id: only, title: Only, prompt: "{{feature}}"}
    """
    return parse(textwrap.dedent(text), source="t.yaml", origin=TemplateOrigin.user)


def test_defaults_fill_in_and_values_become_strings(typed):
    assert resolve_inputs(typed, {"feature": "Dark mode\nwith a toggle"}) == {
        "feature": "Dark mode\nwith a toggle",
        "command": "make test",
        "count": "3",
        "ratio": "",
        "verbose": "false",
        "level": "low",
        "note": "",
    }
    given = {"feature": "x", "count": 7, "ratio": 2.5, "verbose": True, "level": "high", "command": " pytest -x "}
    assert resolve_inputs(typed, given) | {"note": ""} == {
        "feature": "x",
        "command": "pytest -x",
        "count": "7",
        "ratio": "2.5",
        "verbose": "true",
        "level": "high",
        "note": "",
    }


def test_strings_from_the_command_line_are_accepted(typed):
    values = resolve_inputs(typed, {"feature": "x", "count": "12", "ratio": "0.5", "verbose": "True"})
    assert (values["count"], values["ratio"], values["verbose"]) == ("12", "0.5", "true")
    values = resolve_inputs(typed, {"feature": "x", "verbose": "no", "count": ""})
    assert (values["verbose"], values["count"]) == ("false", "3")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "inputs.feature: is required"),
        ({"feature": "   "}, "inputs.feature: is required"),
        ({"feature": "x", "cuont": 3}, "inputs.cuont: no input named cuont; inputs: feature, command, count"),
        ({"feature": "x", "count": "three"}, "inputs.count: must be an integer (not 'three')"),
        ({"feature": "x", "count": True}, "inputs.count: must be an integer (not True)"),
        ({"feature": "x", "count": 2.5}, "inputs.count: must be an integer (not 2.5)"),
        ({"feature": "x", "ratio": "lots"}, "inputs.ratio: must be a number (not 'lots')"),
        ({"feature": "x", "ratio": float("nan")}, "inputs.ratio: must be a number (not nan)"),
        ({"feature": "x", "verbose": "maybe"}, "inputs.verbose: must be true/false (not 'maybe')"),
        ({"feature": "x", "level": "medium"}, "inputs.level: must be one of: low, high (not 'medium')"),
        ({"feature": "x", "command": "a\nb"}, "inputs.command: must be one line"),
        ({"feature": "a\x00b"}, "inputs.feature: must not contain NUL characters"),
        ({"feature": "x" * 100_001}, "inputs.feature: must be at most 100,000 characters"),
        ({"feature": ["a", "list"]}, "inputs.feature: must be text (not ['a', 'list'])"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(typed, given, message):
    with pytest.raises(InvalidInput) as caught:
        resolve_inputs(typed, given)
    assert message in caught.value.message
    assert caught.value.status_code == 422


def test_every_bad_input_is_named_at_once(typed):
    with pytest.raises(InvalidInput) as caught:
        resolve_inputs(typed, {"count": "x", "extra": 1})
    assert [e["loc"] for e in caught.value.extra["errors"]] == [
        ["inputs", "extra"],
        ["inputs", "feature"],
        ["inputs", "count"],
    ]


# --- placeholders ----------------------------------------------------------------------------


def test_render_fills_in_inputs_and_results():
    text = "Build {{feature}} with {{ test_command }}; plan: {{steps.plan.result}}; {{steps.review.result}}"
    assert render(text, {"feature": "dark mode", "test_command": "make test"}, {"plan": "1. do it"}) == (
        "Build dark mode with make test; plan: 1. do it; (the result of step review is not known yet)"
    )
    assert render("{{steps.plan.result}}", {}, {}) == "(the result of step plan is not known yet)"


def test_render_fills_in_once_and_leaves_other_text_alone():
    values = {"feature": "{{steps.plan.result}} and {{other}}", "other": "no"}
    assert render("{{feature}}", values, {"plan": "secret"}) == "{{steps.plan.result}} and {{other}}"
    assert render("{{unknown}} {{ a b }} {{ {x}", {}, {}) == "{{unknown}} {{ a b }} {{ {x}"


def test_placeholders_are_named_as_written():
    assert placeholders("{{feature}} {{ steps.plan.result }} {{feature}} {{ not one }} {{steps.x.y}}") == {
        "feature",
        "steps.plan.result",
        "steps.x.y",
    }
    assert placeholders("no braces here, {single} ones neither") == set()
