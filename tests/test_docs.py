"""Docs that drift from the code fail the build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from backend.config import Settings
from backend.events.types import EVENT_DESCRIPTIONS, BoardEventType
from backend.main import create_app
from backend.runs.event_types import RUN_EVENT_DESCRIPTIONS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    missing = [f"KANBAN_{name.upper()}" for name in Settings.model_fields if f"KANBAN_{name.upper()}" not in text]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_every_event_type_is_documented():
    text = (DOCS / "events.md").read_text()
    missing = [t.value for t in BoardEventType if f"`{t.value}`" not in text]
    assert not missing, f"document these events in docs/events.md: {missing}"


def _table(header: str, descriptions: dict[Any, str]) -> str:
    rows = [f"| `{name.value}` | {text} |" for name, text in descriptions.items()]
    return "\n".join([f"| {header} | meaning |", "|---|---|", *rows])


@pytest.mark.parametrize(
    ("page", "header", "descriptions"),
    [("events.md", "event", EVENT_DESCRIPTIONS), ("api.md", "run event", RUN_EVENT_DESCRIPTIONS)],
)
def test_the_event_tables_are_the_ones_the_code_describes(page, header, descriptions):
    """The docs' event tables say word for word what the code (and so the OpenAPI document) says."""
    table = _table(header, descriptions)
    assert table in (DOCS / page).read_text(), f"replace the table in docs/{page} with:\n{table}"


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()


def _route(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented(text: str) -> dict[tuple[str, str], str]:
    """Each `METHOD /api/...` named in the text, with the line (table row) that names it."""
    routes: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/api/[^`?\s]*)", line):
            routes.setdefault((method, _route(path)), line)
    return routes


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return _properties(document, document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]])
    names = set(schema.get("properties", {}))
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            names |= _properties(document, part)
    return names


# Query parameters every stream takes; docs/api.md and docs/events.md explain them once.
COMMON_QUERY = {"token", "last_event_id"}


def test_the_api_reference_names_every_route_and_its_fields(openapi):
    """docs/api.md has a row for every route of the OpenAPI document (and no other), naming each
    query parameter and body field the route takes, its success code when that is not 200, and
    the true default of every parameter it shows one for."""
    documented = _documented((DOCS / "api.md").read_text())
    routes = {
        (method.upper(), _route(path)): (path, operation)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
    }
    assert sorted(routes.keys() - documented.keys()) == [], "document these routes in docs/api.md"
    assert sorted(documented.keys() - routes.keys()) == [], "docs/api.md names routes the API does not have"
    wrong = {}
    for key, (_path, operation) in routes.items():
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"} - COMMON_QUERY
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            names |= _properties(openapi, body["schema"])
        row = documented[key]
        missing = sorted(name for name in names if not re.search(rf"\b{name}\b", row))
        success = next(code for code in operation["responses"] if code.startswith("2"))
        if success != "200" and f"→ {success}" not in row:
            missing.append(f"→ {success}")
        for parameter in operation.get("parameters", []):
            shown = re.search(rf"[?&]{parameter['name']}=([^&`\\|]+)", row)  # a default shown as `?limit=50`
            if shown and shown.group(1) != str(parameter["schema"].get("default")):
                missing.append(f"{parameter['name']}={parameter['schema'].get('default')}")
        if missing:
            wrong[" ".join(key)] = missing
    assert wrong == {}, "name these fields, success codes and defaults in the routes' rows of docs/api.md"


def _workflow_example() -> str:
    text = (DOCS / "workflows.md").read_text()
    (example,) = re.findall(r"A complete template:\n\n```yaml\n(.*?)```", text, re.S)
    return example


def test_the_complete_workflow_template_in_the_docs_is_valid(tmp_path):
    from backend.workflows import templates

    path = tmp_path / "release.yaml"
    path.write_text(_workflow_example())
    template = templates.load_file(path, templates.TemplateOrigin.project)
    assert [step.id for step in template.ordered_steps()] == ["changelog", "bump", "full-tests", "sign-off"]
    assert {step.kind.value for step in template.steps} == {"agent", "check", "approval"}


def test_the_documented_validation_errors_are_the_ones_reported(tmp_path):
    """docs/workflows.md shows what validation reports for the example with two typos, then
    with a cycle; those lines are made here from the example and compared."""
    from backend.errors import KanbanError
    from backend.workflows import templates

    text = (DOCS / "workflows.md").read_text()
    typos, cycle = re.findall(r"```\n(\.kanban/workflows/.*?)```", text, re.S)
    folder = tmp_path / ".kanban" / "workflows"
    folder.mkdir(parents=True)

    def reported(**replacements: str) -> list[str]:
        broken = _workflow_example()
        for old, new in replacements.items():
            assert old in broken
            broken = broken.replace(old, new)
        (folder / "release.yaml").write_text(broken)
        with pytest.raises(KanbanError) as raised:
            templates.load_file(folder / "release.yaml", templates.TemplateOrigin.project)
        return [str(problem).removeprefix(f"{tmp_path}/") for problem in raised.value.problems]  # type: ignore[attr-defined]

    assert typos.strip().splitlines() == reported(
        **{"for version {{version}}": "for version {{verison}}", "needs: [full-tests]": "needs: [full-tests, publsh]"}
    )
    (cycle_line,) = cycle.strip().splitlines()
    assert cycle_line in reported(**{"needs: [bump]": "needs: [sign-off]"})
