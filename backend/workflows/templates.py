"""Workflow templates: YAML files describing steps that become task cards linked by dependencies.

This module reads, checks and finds templates, resolves their inputs and fills in their
placeholders. It knows nothing of the database or of FastAPI.

The format
==========

A template is one YAML document, a mapping::

    name: feature                 # required: ^[a-z][a-z0-9-]{0,39}$, unique in its place
    title: Build a feature        # required: 1..200 characters
    description: Plan, approve the plan, implement until the tests pass.   # optional
    inputs:                       # optional mapping; the order is kept (it is the form's order)
      feature:                    # input names: ^[a-z][a-z0-9_]{0,39}$
        title: What to build      # default: the name
        type: text                # string (default) | text | integer | number | boolean | choice
        description: ...          # optional help text
        required: true            # default: true, unless a default is given
        default: ...              # optional; must fit the type (and be one of the options)
        options: [a, b]           # choice only, and required for it
      test_command:
        type: string
        default: make test
    steps:                        # required list, 1..50 steps
      - id: plan                  # required: ^[a-z][a-z0-9_-]{0,39}$, unique
        title: Plan {{feature}}   # required: 1..200 characters, the card's title
        kind: agent               # agent (default) | check | approval
        prompt: |                 # agent: required; approval: optional (shown to the person); check: not allowed
          Write a plan for: {{feature}}
        review: auto              # human | auto; default human for agent, auto for check; not on approval
        merge: false              # agent with review auto, optional: done without merging; its commits
                                  #   go to the steps that need it and land with theirs (default true)
        needs: []                 # ids of steps this one waits for (all of them)
        model: claude-sonnet-4-5          # agent only, optional: the model
        permission_mode: acceptEdits      # agent only: default | acceptEdits | plan | bypassPermissions
        max_turns: 30                     # agent only: 1..1000
        max_budget_usd: 2.5               # agent only: more than 0, at most 1000
        plugins: [fetch]                  # agent only: the plugins the step gets (else the project's)
        knowledge:                        # agent only
          read: [SQLite internals]        #   the collections it searches
          write: SQLite internals         #   the collection it writes to
        until:                            # agent only: after the agent, run `check`; when it fails
          check: "{{test_command}}"       #   the same session continues with its output
          max_attempts: 3                 #   1..20, default 3
          timeout_seconds: 600            #   1..86400, default 600
      - id: tests
        kind: check
        needs: [plan]
        command: "{{test_command}}"       # check: required, run in the step's worktree
        timeout_seconds: 600              # check only: 1..86400, default 600

YAML's traps: a value that starts with ``{`` must be quoted (``title: "{{feature}}"``), since
YAML reads it as a mapping; ``yes``, ``no``, ``on``, ``off`` and numbers meant as text need
quotes too (both are reported with that advice). A key written twice in one mapping is a
problem (YAML would keep the last). An empty value (``needs:``, an input ``feature:`` with
nothing after it) means not given. Anchors, aliases and ``<<`` merge keys work.

Kinds of step:

- ``agent``: an agent works on the card with ``prompt``; its final message is the step's result.
  ``review: human`` leaves the card in Review for a person, ``auto`` accepts it when it succeeded
  (merged into the base branch and done; with ``merge: false`` done without the merge: the steps
  that need it start from its commits, which land in the base branch with theirs).
- ``check``: ``command`` runs in the card's worktree; exit status 0 passes.
- ``approval``: a person approves (or not); ``prompt`` tells them what to look at.

Placeholders
============

``{{name}}`` is the value of an input, ``{{steps.<id>.result}}`` the result of a step.
White space inside the braces is allowed (``{{ name }}``). A placeholder is ``{{``, one word
without white space or braces, and ``}}``; anything else (``{{ a b }}``, a lone ``{{``) is
plain text. There is no escaping: a word between double braces is always a placeholder, and it
must name an input or a step's result.

Where they may appear: in a step's ``title`` and ``prompt``, ``command`` and ``until.check``.
Inputs may appear in all of them; a step's result only in a prompt, and only of a step this one
needs (directly or through the steps it needs), since the result must exist when the step
starts. Titles are set when the workflow starts, before any result exists, and results are an
agent's words, which never become part of a shell command. Filling in happens once: a value
that itself contains ``{{...}}`` is not filled in again.

Inputs
======

Values are strings when they reach prompts: ``true``/``false`` for booleans, numbers as
written. The command line's strings are accepted for integers (``"3"``), numbers (``"2.5"``)
and booleans (``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0``). A ``string``
is one line (its ends trimmed), a ``text`` any number of lines, a ``choice`` one of its
options. A value that is missing or blank takes the default; without one, a required input
is refused and any other is the empty string. Values are at most 100,000 characters, without
NUL characters.

Where templates come from
=========================

``discover`` reads, in this order: the built-in templates (this package's ``builtin/``), the
user's folder (``*.yaml``, ``*.yml``) and the project's ``<workspace>/.kanban/workflows/``.
A later place's template replaces an earlier one of the same name (project over user over
built-in), also when the later file is broken: then the name stands for that broken file,
which is listed with its problems, since the file meant to replace the other one. A broken
file's name is its ``name`` key when that can be read, else the file's name without suffix.
Folders that do not exist are fine. Files are read as UTF-8, at most 256 KiB.

Problems
========

Every problem names its file, its line (1-based, when known), the field
(``steps[2].needs[0]``, ``inputs.feature.type``) and what is wrong; all problems of a file are
reported at once.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import reprlib
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path, PurePath
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, ValidationError
from yaml.reader import ReaderError

from ..errors import InvalidInput, NotFound
from ..kit.schemas import TextLimits
from ..knowledge.schemas import CollectionName
from ..plugins.schemas import PluginName
from ..projects.schemas import PermissionMode

MAX_TEMPLATE_BYTES = 256 * 1024
MAX_STEPS = 50
MAX_INPUTS = 50
MAX_OPTIONS = 100
MAX_VALUE_CHARS = 100_000
DEFAULT_TIMEOUT_SECONDS = 600
DEFAULT_MAX_ATTEMPTS = 3
PROJECT_FOLDER = Path(".kanban") / "workflows"
SUFFIXES = (".yaml", ".yml")
BUILTIN_PREFIX = "builtin:"
# How many problems a TemplateInvalid's message and body show (the exception keeps them all).
SHOWN_PROBLEMS = 50

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
INPUT_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
STEP_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
_PATTERN_WORDS = {
    NAME_PATTERN: "lowercase letters, digits and -, starting with a letter, at most 40 characters",
    INPUT_PATTERN: "lowercase letters, digits and _, starting with a letter, at most 40 characters",
    STEP_PATTERN: "lowercase letters, digits, - and _, starting with a letter, at most 40 characters",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_RESULT = re.compile(r"steps\.(.+)\.result")
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class InputType(StrEnum):
    string = "string"  # one line
    text = "text"  # several lines
    integer = "integer"
    number = "number"
    boolean = "boolean"
    choice = "choice"


class StepKind(StrEnum):
    agent = "agent"
    check = "check"
    approval = "approval"


class ReviewMode(StrEnum):
    human = "human"
    auto = "auto"


class TemplateOrigin(StrEnum):
    builtin = "builtin"
    user = "user"
    project = "project"


# What a template is once read: every default filled in. These round-trip through
# `model_dump(mode="json")` and `model_validate` (a workflow keeps the template it was made from).


class TemplateInput(BaseModel):
    name: str
    title: str
    type: InputType
    description: str = ""
    required: bool
    default: str | int | float | bool | None = None
    options: list[str] = Field(default_factory=list)


class Knowledge(BaseModel):
    read: list[str] = Field(default_factory=list)
    write: str | None = None


class Until(BaseModel):
    check: str
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


class Step(BaseModel):
    id: str
    title: str
    kind: StepKind
    prompt: str = ""  # empty for check steps (and approvals without one)
    needs: list[str] = Field(default_factory=list)
    review: ReviewMode | None  # None only for approvals
    merge: bool = True  # False (review auto only): accepted without merging, its commits passed on
    model: str | None = None
    permission_mode: PermissionMode | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    plugins: list[str] | None = None  # None: the project's plugins
    knowledge: Knowledge | None = None
    until: Until | None = None
    command: str | None = None  # check steps
    timeout_seconds: int | None = None  # check steps: default 600


class Template(BaseModel):
    name: str
    title: str
    description: str = ""
    inputs: list[TemplateInput] = Field(default_factory=list)
    steps: list[Step]
    origin: TemplateOrigin
    source: str  # "builtin:feature.yaml", or the file's path

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        known = ", ".join(s.id for s in self.steps)
        raise NotFound(f"Workflow template {self.name} has no step {step_id!r}; steps: {known}")

    def ordered_steps(self) -> list[Step]:
        """Every step after the steps it needs; among those ready, the file's order. (Needs
        naming no step of the template are ignored; a cycle, which `parse` refuses, would be
        broken in the file's order.)"""
        known = {step.id for step in self.steps}
        remaining = list(self.steps)
        placed: set[str] = set()
        ordered: list[Step] = []
        while remaining:
            ready = next((s for s in remaining if all(n in placed or n not in known for n in s.needs)), remaining[0])
            remaining.remove(ready)
            placed.add(ready.id)
            ordered.append(ready)
        return ordered


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a template file. `line` is 1-based (None when unknown)."""

    source: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class TemplateInvalid(InvalidInput):
    """A template file that cannot be used (422); `problems` lists everything wrong with it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        sources = list(dict.fromkeys(p.source for p in self.problems))
        what = f"The workflow template {sources[0]}" if len(sources) == 1 else "Workflow templates"
        count = len(self.problems)
        lines = [f"{what} {'is' if len(sources) == 1 else 'are'} not valid ({count} problem{'s' * (count != 1)}):"]
        lines += [str(problem) for problem in self.problems[:SHOWN_PROBLEMS]]
        if count > SHOWN_PROBLEMS:
            lines.append(f"… and {count - SHOWN_PROBLEMS} more")
        super().__init__("\n".join(lines), problems=[asdict(p) for p in self.problems[:SHOWN_PROBLEMS]])


@dataclass
class Discovery:
    """The templates offered (built-in first, then the user's, then the project's) and the
    files that could not be read, with why."""

    templates: list[Template] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The file's shape, as written (no defaults filled in yet: None is "not given").

Title = Annotated[str, TextLimits(1, 200, strip=True)]
Description = Annotated[str, TextLimits(0, 2_000, strip=True)]
Prompt = Annotated[str, TextLimits(1, MAX_VALUE_CHARS, strip=True)]
Command = Annotated[str, TextLimits(1, 10_000, strip=True)]
Option = Annotated[str, TextLimits(1, 200, strip=True)]
Seconds = Annotated[int, Field(strict=True, ge=1, le=86_400)]


_M = TypeVar("_M", bound=BaseModel)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _InputShape(_Shape):
    title: Title | None = None
    type: InputType = InputType.string
    description: Description | None = None
    required: StrictBool | None = None
    default: Any = None  # checked against the type by hand
    options: Annotated[list[Option], Field(max_length=MAX_OPTIONS)] | None = None


class _KnowledgeShape(_Shape):
    read: Annotated[list[CollectionName], Field(max_length=50)] = Field(default_factory=list)
    write: CollectionName | None = None


class _UntilShape(_Shape):
    check: Command
    max_attempts: Annotated[int, Field(strict=True, ge=1, le=20)] = DEFAULT_MAX_ATTEMPTS
    timeout_seconds: Seconds = DEFAULT_TIMEOUT_SECONDS


class _StepShape(_Shape):
    id: Annotated[str, StringConstraints(pattern=STEP_PATTERN)]
    title: Title
    kind: StepKind = StepKind.agent
    prompt: Prompt | None = None
    review: ReviewMode | None = None
    merge: Annotated[bool, Field(strict=True)] | None = None
    needs: Annotated[list[str], Field(max_length=MAX_STEPS)] | None = None  # `needs:` alone: none
    model: Annotated[str, TextLimits(1, 100, strip=True)] | None = None
    permission_mode: PermissionMode | None = None
    max_turns: Annotated[int, Field(strict=True, ge=1, le=1000)] | None = None
    max_budget_usd: Annotated[float, Field(strict=True, gt=0, le=1000, allow_inf_nan=False)] | None = None
    plugins: Annotated[list[PluginName], Field(max_length=100)] | None = None
    knowledge: _KnowledgeShape | None = None
    until: _UntilShape | None = None
    command: Command | None = None
    timeout_seconds: Seconds | None = None


class _TemplateShape(_Shape):
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    title: Title
    description: Description | None = None
    inputs: dict[Any, Any] | None = None  # each input checked on its own
    steps: Annotated[list[Any], Field(min_length=1, max_length=MAX_STEPS)]  # each step checked on its own


_AGENT_ONLY = ("model", "permission_mode", "max_turns", "max_budget_usd", "plugins", "knowledge", "until", "merge")
_KEYS: dict[type[BaseModel], list[str]] = {
    shape: list(shape.model_fields) for shape in (_TemplateShape, _InputShape, _StepShape, _KnowledgeShape, _UntilShape)
}

# ---------------------------------------------------------------------------------------------
# Where each field is in the file.

FieldPath = tuple[str | int, ...]  # mapping keys as strings, list positions as ints


def _format(path: FieldPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _Lines:
    """Each field's line, from the YAML nodes: a mapping entry's key, a list item's start."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self.lines: dict[FieldPath, int] = {}
        self.values: dict[FieldPath, yaml.Node] = {}
        self.duplicates: list[tuple[FieldPath, int, int]] = []  # path, line, first line
        self._seen: set[int] = set()

    def line(self, path: FieldPath) -> int | None:
        """The line of `path`, or of the nearest enclosing field that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def walk(self, node: yaml.Node, path: FieldPath = (), line: int | None = None) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1 if line is None else line)
        self.values.setdefault(path, node)
        if id(node) in self._seen or len(path) > 20:  # an alias met again; or absurdly deep
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))
        elif isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                    continue
                key = self._key(key_node)
                key_line = key_node.start_mark.line + 1
                if key in first:
                    self.duplicates.append(((*path, key), key_line, first[key]))
                    continue
                first[key] = key_line
                self.walk(value_node, (*path, key), key_line)

    def _key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:str":
            try:
                return str(self._loader.construct_object(node))
            except yaml.YAMLError:
                pass
        return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__}>"


def _data_path(data: Any, loc: Iterable[str | int]) -> FieldPath:
    """Pydantic's `loc` as a path like the nodes': keys as strings, list positions as ints."""
    path: list[str | int] = []
    for part in loc:
        if isinstance(data, list) and isinstance(part, int):
            path.append(part)
            data = data[part] if 0 <= part < len(data) else None
        elif isinstance(data, dict):
            key = next((k for k in data if k == part or str(k) == str(part)), part)
            path.append(str(key))
            data = data.get(key)
        else:
            path.append(str(part))
            data = None
    return tuple(path)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 1, 4, 4, 60, 60


def _short(value: Any) -> str:
    """A value for a message: short, however big it is (an alias can make it huge)."""
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _typed(value: Any) -> str:
    """How YAML read a bare value, for messages that suggest quotes."""
    kind = {bool: "true/false", int: "a number", float: "a number"}.get(type(value), type(value).__name__)
    return f"YAML read {_short(value)} as {kind}: put it in quotes"


def _describe(error: Any, shape: type[BaseModel] | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    given = f" (not {_short(value)})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        known = _KEYS.get(shape, []) if shape else []
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"unknown key {key}{hint}; known keys: {', '.join(known)}" if known else f"unknown key {key}{hint}"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '')}{given}"
    if kind == "string_type":
        return f"must be text ({_typed(value)})" if isinstance(value, bool | int | float) else "must be text" + given
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length'):,} characters"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return f"must be {_PATTERN_WORDS.get(pattern, 'of the form ' + pattern)}{given}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + given
    if kind in ("float_type", "float_parsing"):
        return "must be a number" + given
    if kind == "finite_number":
        return "must be a finite number" + given
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false" + given
    if kind in ("list_type", "tuple_type"):
        return "must be a list, like [a, b]" + given
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (key: value lines)" + given
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item{'s' * (ctx.get('min_length') != 1)}"
    if kind == "too_long":
        return f"may have at most {ctx.get('max_length')} items, not {ctx.get('actual_length')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge'):g}" + given
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le'):g}" + given
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt'):g}" + given
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _shape_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose field the error is about (for an unknown key: the one it is not in)."""
    shape: type[BaseModel] | None = root
    for part in loc[:-1]:
        if shape is None or isinstance(part, int):
            continue
        info = shape.model_fields.get(str(part))
        if info is None:
            return None
        shape = next((t for t in _models_in(info.annotation)), None)
    return shape


def _models_in(annotation: Any) -> Iterable[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _models_in(arg)


# ---------------------------------------------------------------------------------------------
# Reading and checking.


class _Checker:
    def __init__(self, source: str, lines: _Lines) -> None:
        self.source = source
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: FieldPath, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(self.source, line or self.lines.line(path), _format(path), message))

    def validate(self, shape: type[_M], data: Any, at: FieldPath = ()) -> _M | None:
        try:
            return shape.model_validate(data)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                path = (*at, *_data_path(data, item["loc"]))
                self.add(path, _describe(item, _shape_at(shape, item["loc"])))
            return None


def _results_named(text: str) -> Iterable[tuple[re.Match[str], str | None]]:
    """Each placeholder in `text`, with the step id when it is `steps.<id>.result`."""
    for match in _PLACEHOLDER.finditer(text):
        result = _RESULT.fullmatch(match.group(1))
        yield match, result.group(1) if result else None


def _fits(kind: InputType, value: Any, options: Sequence[str]) -> str | None:
    """What is wrong with `value` as a default of an input of this type, or None."""
    if kind in (InputType.string, InputType.text, InputType.choice):
        if not isinstance(value, str):
            return f"must be text ({_typed(value)})" if isinstance(value, bool | int | float) else "must be text"
        if "\x00" in value:
            return "must not contain NUL characters"
        if len(value) > MAX_VALUE_CHARS:
            return f"must be at most {MAX_VALUE_CHARS:,} characters"
        if kind is InputType.string and ("\n" in value or "\r" in value):
            return "a string input is one line: use type text for several"
        if kind is InputType.choice and value not in options:
            return f"{value!r} is not one of the options: {', '.join(options)}"
        return None
    if kind is InputType.integer:
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool)
            else f"must be an integer (not {_short(value)})"
        )
    if kind is InputType.number:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return None
        return f"must be a number (not {_short(value)})"
    return None if isinstance(value, bool) else f"must be true or false (not {_short(value)})"


def _check_inputs(check: _Checker, inputs: dict[Any, Any]) -> dict[str, _InputShape]:
    valid: dict[str, _InputShape] = {}
    if len(inputs) > MAX_INPUTS:
        check.add(("inputs",), f"may have at most {MAX_INPUTS} inputs, not {len(inputs)}")
    for key, raw in inputs.items():
        at: FieldPath = ("inputs", str(key))
        if not isinstance(key, str) or not re.fullmatch(INPUT_PATTERN, key):
            check.add(at, f"input names are {_PATTERN_WORDS[INPUT_PATTERN]} (not {_short(key)})")
        raw = {} if raw is None else raw  # `feature:` alone: a required one-line string
        model = check.validate(_InputShape, raw, at)
        if not isinstance(raw, dict):
            continue
        written = raw.get("type", InputType.string.value)
        type_ = InputType(written) if isinstance(written, str) and written in set(InputType) else None
        options = raw.get("options")
        if type_ is None:
            continue
        if type_ is InputType.choice:
            if not options:
                check.add((*at, "options") if "options" in raw else at, "a choice needs options: options: [a, b]")
            elif isinstance(options, list):
                seen: set[str] = set()
                for index, option in enumerate(options):
                    if not isinstance(option, str):
                        continue
                    if option.strip() in seen:
                        check.add((*at, "options", index), f"{option!r} is listed twice")
                    seen.add(option.strip())
        elif options is not None:
            check.add((*at, "options"), f"options are only for type choice (this input is {type_.value})")
        default = raw.get("default")
        if default is not None:
            known = [o for o in options if isinstance(o, str)] if isinstance(options, list) else []
            wrong = _fits(type_, default, known)
            if wrong and not (type_ is InputType.choice and not known and isinstance(default, str)):
                check.add((*at, "default"), wrong)
        if model is not None and isinstance(key, str):
            valid[key] = model
    return valid


@dataclass
class _StepView:
    """What the checks need of a step, read from the file even when other fields are wrong."""

    index: int
    raw: dict[str, Any]
    id: str | None
    kind: StepKind | None
    needs: list[tuple[int, str]]


def _view(index: int, raw: Any) -> _StepView | None:
    if not isinstance(raw, dict):
        return None
    step_id = raw.get("id")
    kind = raw.get("kind", StepKind.agent.value)
    needs = raw.get("needs")
    return _StepView(
        index,
        raw,
        step_id if isinstance(step_id, str) and re.fullmatch(STEP_PATTERN, step_id) else None,
        StepKind(kind) if isinstance(kind, str) and kind in set(StepKind) else None,
        [(i, n) for i, n in enumerate(needs) if isinstance(n, str)] if isinstance(needs, list) else [],
    )


def _check_kind(check: _Checker, view: _StepView) -> None:
    at: FieldPath = ("steps", view.index)
    raw = view.raw
    given = {key for key, value in raw.items() if value is not None}
    if view.kind is StepKind.agent:
        if "prompt" not in given:
            check.add((*at, "prompt"), "an agent step needs a prompt: what the agent should do")
    elif view.kind is StepKind.check:
        if "command" not in given:
            check.add((*at, "command"), "a check step needs a command (it passes when the command exits 0)")
        if "prompt" in given:
            check.add((*at, "prompt"), "a check step has no prompt: it runs its command")
    if view.kind is not None and view.kind is not StepKind.check:
        for key in ("command", "timeout_seconds"):
            if key in given:
                hint = " (an agent step's own check is until.check)" if view.kind is StepKind.agent else ""
                check.add((*at, key), f"{key} is only for check steps{hint}")
    if view.kind is not None and view.kind is not StepKind.agent:
        for key in _AGENT_ONLY:
            if key in given:
                hint = ": a check step is a check already" if key == "until" and view.kind is StepKind.check else ""
                check.add((*at, key), f"{key} is only for agent steps{hint}")
    if view.kind is StepKind.approval and "review" in given:
        check.add((*at, "review"), "an approval step has no review: the person approves it")
    if view.kind is StepKind.agent and raw.get("merge") is False and raw.get("review") != ReviewMode.auto.value:
        check.add((*at, "merge"), "merge: false needs review: auto (a person's Approve always merges)")


def _cycles(order: Sequence[str], edges: Mapping[str, Sequence[tuple[int, str]]]) -> list[tuple[str, int, list[str]]]:
    """Each cycle found, once: (the step closing it, which of its needs, the path)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[str, int, list[str]]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for position, target in edges.get(node, ()):
            if state.get(target) == 1:
                found.append((node, position, [*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in order:
        if node not in state:
            visit(node)
    return found


def _needed(start: str, edges: Mapping[str, Sequence[tuple[int, str]]]) -> set[str]:
    """The steps `start` waits for, directly or through others."""
    seen: set[str] = set()
    todo = [target for _, target in edges.get(start, ())]
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo.extend(target for _, target in edges.get(step, ()))
    return seen


def _check_steps(check: _Checker, steps: list[Any], input_names: list[str]) -> None:
    views = [_view(index, raw) for index, raw in enumerate(steps)]
    first: dict[str, _StepView] = {}
    for view in views:
        if view is None or view.id is None:
            continue
        if view.id in first:
            other = first[view.id]
            where = check.lines.line(("steps", other.index))
            check.add(
                ("steps", view.index, "id"),
                f"duplicate step id {view.id}: steps[{other.index}] (line {where}) has it too",
            )
        else:
            first[view.id] = view
    known = ", ".join(first) or "none"
    edges: dict[str, list[tuple[int, str]]] = {}
    for view in views:
        if view is None:
            continue
        _check_kind(check, view)
        targets: list[tuple[int, str]] = []
        listed: set[str] = set()
        for position, need in view.needs:
            at: FieldPath = ("steps", view.index, "needs", position)
            if need in listed:
                check.add(at, f"{need} is listed twice")
            elif need == view.id:
                check.add(at, "a step cannot need itself")
            elif need not in first:
                check.add(at, f"no step named {need!r}; steps: {known}")
            else:
                targets.append((position, need))
            listed.add(need)
        if view.id is not None and first[view.id] is view:
            edges[view.id] = targets
    for step_id, position, path in _cycles(list(first), edges):
        check.add(("steps", first[step_id].index, "needs", position), f"needs make a cycle: {' → '.join(path)}")
    for view in views:
        if view is not None:
            _check_placeholders(check, view, input_names, first, edges)


def _check_placeholders(
    check: _Checker,
    view: _StepView,
    input_names: list[str],
    steps: Mapping[str, _StepView],
    edges: Mapping[str, Sequence[tuple[int, str]]],
) -> None:
    needed = _needed(view.id, edges) if view.id is not None and steps.get(view.id) is view else set()
    inputs = ", ".join(input_names) if input_names else "this template has none"
    until = view.raw.get("until")
    texts: list[tuple[FieldPath, Any]] = [
        (("steps", view.index, key), view.raw.get(key)) for key in ("title", "prompt", "command")
    ]
    if isinstance(until, dict):
        texts.append((("steps", view.index, "until", "check"), until.get("check")))
    for at, text in texts:
        if not isinstance(text, str):
            continue
        where = at[-1] if at[-1] != "check" else "until.check"
        for match, result_of in _results_named(text):
            token = match.group(1)
            line = _placeholder_line(check.lines, at, text, match.start())
            if result_of is not None:
                if where != "prompt":
                    why = (
                        "a title is set when the workflow starts, before any result exists"
                        if where == "title"
                        else "an agent's words never become part of a command"
                    )
                    check.add(at, f"{{{{{token}}}}}: a step's result can only be used in a prompt ({why})", line)
                elif result_of not in steps:
                    check.add(
                        at, f"{{{{{token}}}}}: no step named {result_of!r}; steps: {', '.join(steps) or 'none'}", line
                    )
                elif result_of == view.id:
                    check.add(at, f"{{{{{token}}}}}: a step's own result does not exist while it works", line)
                elif result_of not in needed:
                    check.add(
                        at,
                        f"{{{{{token}}}}}: this step does not need {result_of} (directly or through the steps it needs), "
                        f"so its result would not exist yet when this step starts; add {result_of} to needs",
                        line,
                    )
            elif token.startswith("steps."):
                check.add(at, f"{{{{{token}}}}}: not a placeholder; a step's result is {{{{steps.<id>.result}}}}", line)
            elif token not in input_names:
                check.add(at, f"no input named {token}; inputs: {inputs}", line)


def _placeholder_line(lines: _Lines, at: FieldPath, text: str, offset: int) -> int | None:
    """The placeholder's own line in a literal block (`|`) or a one-line value; else the field's."""
    node = lines.values.get(at)
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.style == "|":  # the text starts on the line after the `|`
        return node.start_mark.line + 2 + text[:offset].count("\n")
    if node.start_mark.line == node.end_mark.line:
        return node.start_mark.line + 1
    return None


def _build(
    shape: _TemplateShape, inputs: dict[str, _InputShape], steps: list[_StepShape], source: str, origin: TemplateOrigin
) -> Template:
    return Template(
        name=shape.name,
        title=shape.title,
        description=shape.description or "",
        inputs=[
            TemplateInput(
                name=name,
                title=model.title or name,
                type=model.type,
                description=model.description or "",
                required=model.required if model.required is not None else model.default is None,
                default=model.default.strip()
                if isinstance(model.default, str) and model.type is not InputType.text
                else model.default,
                options=model.options or [],
            )
            for name, model in inputs.items()
        ],
        steps=[_build_step(step) for step in steps],
        origin=origin,
        source=source,
    )


def _build_step(step: _StepShape) -> Step:
    review = step.review
    if review is None and step.kind is not StepKind.approval:
        review = ReviewMode.human if step.kind is StepKind.agent else ReviewMode.auto
    until = step.until
    return Step(
        id=step.id,
        title=step.title,
        kind=step.kind,
        prompt=step.prompt or "",
        needs=step.needs or [],
        review=review,
        merge=step.merge is not False,
        model=step.model,
        permission_mode=step.permission_mode,
        max_turns=step.max_turns,
        max_budget_usd=step.max_budget_usd,
        plugins=step.plugins,
        knowledge=Knowledge(read=step.knowledge.read, write=step.knowledge.write) if step.knowledge else None,
        until=Until(check=until.check, max_attempts=until.max_attempts, timeout_seconds=until.timeout_seconds)
        if until
        else None,
        command=step.command,
        timeout_seconds=(step.timeout_seconds or DEFAULT_TIMEOUT_SECONDS) if step.kind is StepKind.check else None,
    )


@dataclass
class _Parsed:
    template: Template | None
    problems: list[Problem]
    name: str | None  # the name the file claims, when it can be read (also when the file is broken)
    name_line: int | None


def _compose(text: str, source: str) -> tuple[Any, _Lines | None, list[Problem]]:
    loader = yaml.SafeLoader(text)
    lines = _Lines(loader)
    try:
        root = loader.get_single_node()
        if root is None:
            return (
                None,
                lines,
                [Problem(source, None, "(top level)", "the file is empty: a template needs name, title and steps")],
            )
        lines.walk(root)  # before construction: it merges `<<` keys into the nodes
        return loader.construct_document(root), lines, []
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(str(part) for part in (error.context, error.problem) if part) or "not valid YAML"
        if "unhashable key" in message or "flow mapping" in message:
            message += ' (a value that starts with { must be in quotes: "{{name}} ...")'
        return None, None, [Problem(source, mark.line + 1 if mark else None, "yaml", message)]
    except ReaderError as error:
        line = text[: error.position].count("\n") + 1
        return None, None, [Problem(source, line, "yaml", f"character {error.character!r}: {error.reason}")]
    except yaml.YAMLError as error:
        return None, None, [Problem(source, None, "yaml", str(error))]
    except RecursionError:
        return None, None, [Problem(source, None, "yaml", "nested too deeply")]
    finally:
        loader.dispose()


def _parse(text: str, source: str, origin: TemplateOrigin) -> _Parsed:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        return _Parsed(None, [Problem(source, None, "(file)", "is larger than 256 KiB")], None, None)
    data, lines, problems = _compose(text, source)
    if lines is None or problems:
        return _Parsed(None, problems, None, None)
    check = _Checker(source, lines)
    for path, line, first in lines.duplicates:
        check.add(path, f"duplicate key (first at line {first}); YAML would keep only the last one", line)
    if not isinstance(data, dict):
        what = "a list" if isinstance(data, list) else _short(data)
        message = f"a template is a mapping (name:, title:, steps:), not {what}"
        return _Parsed(None, [*check.problems, Problem(source, 1, "(top level)", message)], None, None)
    name = data.get("name")
    claimed = name if isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) else None
    shape = check.validate(_TemplateShape, data)
    raw_inputs = data.get("inputs")
    inputs = _check_inputs(check, raw_inputs) if isinstance(raw_inputs, dict) else {}
    input_names = [str(key) for key in raw_inputs] if isinstance(raw_inputs, dict) else []
    raw_steps = data.get("steps")
    steps: list[_StepShape] = []
    if isinstance(raw_steps, list):
        for index, raw in enumerate(raw_steps[:MAX_STEPS]):
            model = check.validate(_StepShape, raw, ("steps", index))
            if isinstance(model, _StepShape):
                steps.append(model)
        _check_steps(check, raw_steps[:MAX_STEPS], input_names)
    name_line = lines.line(("name",)) if "name" in data else None
    if check.problems or not isinstance(shape, _TemplateShape):
        problems = sorted(check.problems, key=lambda p: (p.line is None, p.line or 0))  # stable: by line, then found
        return _Parsed(None, problems, claimed, name_line)
    return _Parsed(_build(shape, inputs, steps, source, origin), [], claimed, name_line)


def parse(text: str, *, source: str, origin: TemplateOrigin) -> Template:
    """The template in `text` (YAML), or TemplateInvalid with every problem found."""
    parsed = _parse(text, source, origin)
    if parsed.template is None:
        raise TemplateInvalid(parsed.problems)
    return parsed.template


def _read(path: Path, source: str) -> str | Problem:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not hang us
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                return Problem(source, None, "(file)", "is not a regular file")
            data = file.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as error:
        return Problem(source, None, "(file)", f"cannot be read: {error.strerror or error}")
    if len(data) > MAX_TEMPLATE_BYTES:
        return Problem(source, None, "(file)", "is larger than 256 KiB")
    try:
        return data.decode("utf-8-sig")  # without a byte order mark
    except UnicodeDecodeError as error:
        where = bytes(error.object)  # what the decoder saw (without the byte order mark)
        line = where[: error.start].count(b"\n") + 1
        return Problem(source, line, "(file)", f"is not UTF-8 text (byte 0x{where[error.start]:02x})")


def load_file(path: Path, origin: TemplateOrigin) -> Template:
    """The template in the file at `path`; TemplateInvalid also when it cannot be read, is
    larger than 256 KiB or is not UTF-8."""
    text = _read(path, str(path))
    if isinstance(text, Problem):
        raise TemplateInvalid([text])
    return parse(text, source=str(path), origin=origin)


# ---------------------------------------------------------------------------------------------
# Finding templates.


Reader = Callable[[], "str | Problem"]


def _builtin_files() -> list[tuple[str, Reader]]:
    folder = resources.files(__package__ or "backend.workflows").joinpath("builtin")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(SUFFIXES)), key=lambda f: f.name)
    return [(BUILTIN_PREFIX + f.name, f.read_text) for f in files]


def _folder_files(folder: Path) -> list[tuple[str, Reader]] | Problem:
    try:
        if not folder.is_dir():
            return []
        files = sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIXES) and p.is_file())
    except OSError as error:
        return Problem(str(folder), None, "(folder)", f"cannot be read: {error.strerror or error}")
    return [(str(p), functools.partial(_read, p, str(p))) for p in files]


def _stem(source: str) -> str | None:
    stem = PurePath(source.removeprefix(BUILTIN_PREFIX)).stem
    return stem if re.fullmatch(NAME_PATTERN, stem) else None


def _scan(
    project_workspace: str | Path | None, user_dir: Path | None
) -> tuple[dict[str, Template | TemplateInvalid], list[Problem]]:
    """Every place's templates by name (a later place's replacing an earlier one's), broken
    files as TemplateInvalid under the name they claim; and every problem."""
    places: list[tuple[TemplateOrigin, list[tuple[str, Reader]] | Problem]] = [
        (TemplateOrigin.builtin, _builtin_files())
    ]
    if user_dir is not None:
        places.append((TemplateOrigin.user, _folder_files(Path(user_dir))))
    if project_workspace is not None:
        places.append((TemplateOrigin.project, _folder_files(Path(project_workspace) / PROJECT_FOLDER)))
    found: dict[str, Template | TemplateInvalid] = {}
    problems: list[Problem] = []
    for origin, files in places:
        if isinstance(files, Problem):
            problems.append(files)
            continue
        here: dict[str, str] = {}  # name -> the file of this place that has it
        for source, read in files:
            text = read()
            parsed = _Parsed(None, [text], None, None) if isinstance(text, Problem) else _parse(text, source, origin)
            name = parsed.template.name if parsed.template else parsed.name or _stem(source)
            if name is not None and name in here:
                message = f"{name} is the name of {here[name]} too, which is the one offered"
                problems.append(Problem(source, parsed.name_line, "name", message))
                continue
            problems.extend(parsed.problems)
            if name is not None:
                here[name] = source
                found[name] = parsed.template or TemplateInvalid(parsed.problems)
    return found, problems


def discover(*, project_workspace: str | Path | None, user_dir: Path | None) -> Discovery:
    """The templates offered to a project: built-in, then the user's folder, then the project's
    `.kanban/workflows/`; a later one replaces an earlier one of the same name. Broken files
    are in `problems` (and not offered)."""
    found, problems = _scan(project_workspace, user_dir)
    return Discovery([t for t in found.values() if isinstance(t, Template)], problems)


def find(name: str, *, project_workspace: str | Path | None, user_dir: Path | None) -> Template:
    """The template named `name`, as `discover` would offer it; NotFound naming the ones there
    are, TemplateInvalid when the file with that name is broken."""
    found, _ = _scan(project_workspace, user_dir)
    entry = found.get(name)
    if isinstance(entry, Template):
        return entry
    if isinstance(entry, TemplateInvalid):
        raise TemplateInvalid(entry.problems)
    known = ", ".join(sorted(n for n, t in found.items() if isinstance(t, Template))) or "none"
    raise NotFound(f"No workflow template named {name!r}; templates: {known}")


# ---------------------------------------------------------------------------------------------
# Inputs and placeholders.


def _value(item: TemplateInput, value: object) -> str:
    """`value` as the string placed into prompts; ValueError saying what is wrong."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"must be at most {MAX_VALUE_CHARS:,} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (found an unpaired surrogate)") from None
    kind = item.type
    if kind is InputType.integer:
        if isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return str(int(value.strip()))
        raise ValueError(f"must be an integer (not {_short(value)})")
    if kind is InputType.number:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return repr(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()) and math.isfinite(float(value)):
            return value.strip()
        raise ValueError(f"must be a number (not {_short(value)})")
    if kind is InputType.boolean:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return "true" if value.strip().lower() in _TRUE else "false"
        raise ValueError(f"must be true/false (not {_short(value)})")
    if isinstance(value, int | float) and not isinstance(value, bool) and kind is not InputType.choice:
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be text (not {_short(value)})")
    if kind is InputType.string:
        value = value.strip()
        if "\n" in value or "\r" in value:
            raise ValueError("must be one line")
    if kind is InputType.choice:
        value = value.strip()
        if value not in item.options:
            raise ValueError(f"must be one of: {', '.join(item.options)} (not {_short(value)})")
    return value


def resolve_inputs(template: Template, given: Mapping[str, object]) -> dict[str, str]:
    """Every input of `template` as the string placed into prompts: the given value, else the
    default, else "" (inputs that are not required). InvalidInput names each field that is
    unknown, missing or wrong. A blank string counts as not given."""
    errors: list[tuple[str, str]] = []
    names = [item.name for item in template.inputs]
    for name in given:
        if name not in names:
            errors.append((str(name), f"no input named {name}; inputs: {', '.join(names) or 'none'}"))
    values: dict[str, str] = {}
    for item in template.inputs:
        value = given.get(item.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if item.default is None:
                if item.required:
                    errors.append((item.name, "is required"))
                values[item.name] = ""
                continue
            value = item.default
        try:
            values[item.name] = _value(item, value)
        except ValueError as error:
            errors.append((item.name, str(error)))
    if errors:
        lines = [f"inputs.{name}: {message}" for name, message in errors]
        issues = [{"loc": ["inputs", name], "msg": message, "type": "value_error"} for name, message in errors]
        raise InvalidInput("; ".join(lines), errors=issues)  # the shape of every 422's `errors`
    return values


def render(text: str, inputs: Mapping[str, str], results: Mapping[str, str]) -> str:
    """`text` with `{{name}}` and `{{steps.<id>.result}}` filled in, in one pass (filled-in
    values are not looked at again). A result not in `results` reads "(the result of step <id>
    is not known yet)"; a name that is not in `inputs` stays as written."""

    def fill(match: re.Match[str]) -> str:
        token = match.group(1)
        result = _RESULT.fullmatch(token)
        if result is not None:
            step_id = result.group(1)
            return results[step_id] if step_id in results else f"(the result of step {step_id} is not known yet)"
        return inputs.get(token, match.group(0))

    return _PLACEHOLDER.sub(fill, text)


def placeholders(text: str) -> set[str]:
    """The placeholders in `text`, as written without the braces: "feature", "steps.plan.result"."""
    return {match.group(1) for match in _PLACEHOLDER.finditer(text)}
