"""Knowledge collections over the API, on SQLite and PostgreSQL: ingestion of notes, files and
URLs (from a local web server), keyword search, bindings, bad input with nothing written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from backend.knowledge import embeddings, fetch
from backend.main import create_app
from backend.models import KnowledgeChunk, KnowledgeCollection, KnowledgeDocument
from tests.backend.factories import create_project
from tests.backend.knowledge_helpers import ARTICLE, serving, tiny_pdf, wait_for_document
from tests.conftest import DATABASE_KINDS, free_port, make_settings, running

MAX_UPLOAD = 300_000


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def kn_settings(request, tmp_path_factory, local_model_dir):
    settings, drop = make_settings(
        request.param,
        tmp_path_factory.mktemp(f"knowledge-{request.param}"),
        knowledge_allow_private_urls=True,  # the test web server is on 127.0.0.1
        knowledge_fetch_timeout_seconds=2,
        knowledge_max_upload_bytes=MAX_UPLOAD,
        knowledge_model_path=local_model_dir,  # a real embedding model, from a test package
        port=free_port(),
    )
    yield settings
    drop()


@pytest.fixture(scope="module")
async def kn_app(kn_settings):
    async with running(create_app(kn_settings)) as application:
        yield application


@pytest.fixture(scope="module")
async def kn(kn_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=kn_app), base_url="http://127.0.0.1") as http:
        yield http


async def new_collection(kn: httpx.AsyncClient, **fields) -> dict:
    response = await kn.post("/api/knowledge/collections", json={"name": f"C {uuid.uuid4().hex[:8]}", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def counts(app) -> tuple[int, int, int]:
    async with app.state.database.session() as session:
        return (
            await session.scalar(select(func.count()).select_from(KnowledgeCollection)),
            await session.scalar(select(func.count()).select_from(KnowledgeDocument)),
            await session.scalar(select(func.count()).select_from(KnowledgeChunk)),
        )


async def search(kn: httpx.AsyncClient, q: str, **params) -> dict:
    response = await kn.get("/api/knowledge/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_collections_crud_and_unique_names(kn):
    collection = await new_collection(kn, description="About databases")
    assert collection["document_count"] == 0 and collection["scope"] == "global"
    again = await kn.post("/api/knowledge/collections", json={"name": collection["name"].upper()})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    renamed = await kn.patch(f"/api/knowledge/collections/{collection['id']}", json={"description": "Changed"})
    assert renamed.status_code == 200 and renamed.json()["description"] == "Changed"
    listed = (await kn.get("/api/knowledge/collections")).json()
    assert collection["id"] in [c["id"] for c in listed]
    assert (await kn.delete(f"/api/knowledge/collections/{collection['id']}")).status_code == 204
    assert (await kn.get(f"/api/knowledge/collections/{collection['id']}")).status_code == 404


async def test_a_note_is_chunked_and_found_and_the_same_note_again_is_a_no_op(kn, kn_app):
    collection = await new_collection(kn)
    body = {
        "title": "Deploying with systemd",
        "content": "# Deploy\n\n## Service unit\n\nThe unit file sets Restart=on-failure for the kanban service.\n",
    }
    response = await kn.post(f"/api/knowledge/collections/{collection['id']}/notes", json=body)
    assert response.status_code == 201, response.text
    note = await wait_for_document(kn, response.json()["id"])
    assert note["status"] == "ready" and note["chunk_count"] == 1, note
    result = await search(kn, "restart on failure", collection_id=collection["id"], mode="keyword")
    assert result["mode_used"] == "keyword"
    (hit,) = result["hits"]
    assert hit["document_id"] == note["id"] and hit["heading"] == "Deploying with systemd › Deploy › Service unit"
    assert "«" in hit["snippet"] and hit["match"] == "keyword"

    before = await counts(kn_app)
    again = await kn.post(f"/api/knowledge/collections/{collection['id']}/notes", json=body)
    assert again.status_code == 200 and again.json()["unchanged"] is True and again.json()["id"] == note["id"]
    assert await counts(kn_app) == before


async def test_a_markdown_file_and_a_pdf_upload(kn):
    collection = await new_collection(kn)
    markdown = "# Backups\n\nCopy kanban.db with the sqlite3 .backup command while the server runs.\n"
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/files",
        files={"file": ("backups.md", markdown.encode(), "application/octet-stream")},
    )
    assert response.status_code == 202, response.text
    document = await wait_for_document(kn, response.json()["id"])
    assert document["status"] == "ready" and document["media_type"] == "text/markdown"
    assert document["content"].startswith("# Backups")

    pdf = tiny_pdf(["Quarterly report on flamingo migration", "Flamingos flew south in October."])
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/files",
        files={"file": ("report.bin", pdf, "application/octet-stream")},
        data={"title": "Flamingo report"},
    )
    assert response.status_code == 202, response.text
    document = await wait_for_document(kn, response.json()["id"])
    assert document["status"] == "ready", document
    assert document["media_type"] == "application/pdf" and "flamingo migration" in document["content"]
    hits = (await search(kn, "flamingos", collection_id=collection["id"], mode="keyword"))["hits"]
    assert [h["document_title"] for h in hits] == ["Flamingo report"]
    hits = (await search(kn, "flamingos", collection_id=collection["id"]))["hits"]
    assert hits[0]["document_title"] == "Flamingo report" and hits[0]["match"] == "both"


async def test_bad_uploads_are_refused_and_nothing_is_written(kn, kn_app):
    collection = await new_collection(kn)
    before = await counts(kn_app)
    url = f"/api/knowledge/collections/{collection['id']}/files"
    binary = bytes(range(256)) * 8
    response = await kn.post(url, files={"file": ("notes.md", binary, "text/markdown")})
    assert response.status_code == 415 and "binary" in response.json()["detail"]
    latin1 = "Caf\xe9 cr\xe8me".encode("latin-1")
    response = await kn.post(url, files={"file": ("menu.txt", latin1, "text/plain")})
    assert response.status_code == 415 and "UTF-8" in response.json()["detail"]
    response = await kn.post(url, files={"file": ("big.md", b"a" * (MAX_UPLOAD + 1), "text/markdown")})
    assert response.status_code == 413 and "KANBAN_KNOWLEDGE_MAX_UPLOAD_BYTES" in response.json()["detail"]
    response = await kn.post(url, files={"file": ("empty.md", b"", "text/markdown")})
    assert response.status_code == 422
    response = await kn.post("/api/knowledge/collections/999999/files", files={"file": ("a.md", b"hi", "text/plain")})
    assert response.status_code == 404
    assert await counts(kn_app) == before


async def test_bad_input_answers_4xx_and_writes_nothing(kn, kn_app):
    collection = await new_collection(kn)
    before = await counts(kn_app)
    notes = f"/api/knowledge/collections/{collection['id']}/notes"
    cases = [
        ("get", "/api/knowledge/search", {"params": {"q": ""}}, 422),
        ("get", "/api/knowledge/search", {"params": {"q": "   "}}, 422),
        ("get", "/api/knowledge/search", {"params": {"q": "x", "collection_id": 999999}}, 404),
        ("get", "/api/knowledge/search", {"params": {"q": "x", "collection_id": 2**31}}, 422),
        ("get", "/api/knowledge/search", {"params": {"q": "a\x00b"}}, 422),
        ("get", f"/api/knowledge/collections/{2**31}", {}, 422),
        ("get", "/api/knowledge/collections/999999/documents", {}, 404),
        ("post", "/api/knowledge/collections/999999/notes", {"json": {"title": "t", "content": "c"}}, 404),
        ("post", notes, {"json": {"title": "t", "content": "x" * (10 * 1024 * 1024)}}, 413),
        ("post", notes, {"json": {"title": "t", "content": "nul\x00"}}, 422),
        ("post", notes, {"json": {"title": "", "content": "c"}}, 422),
        ("post", notes, {"json": {"title": "t", "content": "c", "supersedes_id": 999999}}, 404),
        ("post", f"/api/knowledge/collections/{collection['id']}/urls", {"json": {"url": "file:///etc/passwd"}}, 422),
        ("post", f"/api/knowledge/collections/{collection['id']}/urls", {"json": {"url": "ftp://x.org/a"}}, 422),
        ("post", "/api/knowledge/collections", {"json": {"name": "n\x00"}}, 422),
        ("post", "/api/knowledge/collections", {"json": {"name": "p", "scope": "project"}}, 422),
        ("post", "/api/knowledge/collections", {"json": {"name": "p", "scope": "project", "project_id": 999999}}, 404),
        ("delete", "/api/knowledge/documents/999999", {}, 404),
        ("post", "/api/knowledge/documents/999999/reingest", {}, 404),
        ("put", "/api/projects/999999/knowledge/1", {"json": {"can_write": True}}, 404),
        ("post", "/api/runs/999999/knowledge", {"json": {}}, 404),
    ]
    for method, path, kwargs, expected in cases:
        response = await getattr(kn, method)(path, **kwargs)
        assert response.status_code == expected, (method, path, response.status_code, response.text[:300])
        assert response.json()["detail"]
    assert await counts(kn_app) == before


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "AND OR NOT",
        "col:umn",
        "a*",
        "(",
        "NEAR(a b)",
        "^start",
        "-minus",
        "ünïcødé 数据库",
        "it's",
        "back\\slash 'quoted'",
        "a & b | !c <-> d",
        "the of and",
    ],
)
async def test_search_syntax_in_user_text_is_never_an_error(kn, query):
    for mode in ("keyword", "hybrid"):
        result = await search(kn, query, mode=mode)
        assert isinstance(result["hits"], list)


async def test_urls_from_a_local_server(kn):
    collection = await new_collection(kn)
    with serving() as site:
        page = site.page("/wal.html", ARTICLE)
        pdf = site.page("/report", tiny_pdf(["Pelicans nest on islands."]), "application/pdf")
        hang = site.hang("/hang")
        endless = site.endless("/endless")
        too_large = site.page("/large.txt", "word " * 100_000, "text/plain")
        redirects = site.redirect("/r1", "/r2")
        site.redirect("/r2", "/wal.html")
        loop = site.redirect("/loop", "/loop")
        missing = site.url + "/missing"
        added = {}
        for name, url in [
            ("page", page),
            ("pdf", pdf),
            ("hang", hang),
            ("endless", endless),
            ("too_large", too_large),
            ("redirects", redirects),
            ("loop", loop),
            ("missing", missing),
        ]:
            response = await kn.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": url})
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "pending"
            added[name] = response.json()["id"]
        done = {name: await wait_for_document(kn, document_id) for name, document_id in added.items()}

    assert done["page"]["status"] == "ready", done["page"]
    assert done["page"]["title"] == "Tuning the write-ahead log"
    assert "Queue writers" in done["page"]["content"] and "Copyright nobody" not in done["page"]["content"]
    assert done["pdf"]["status"] == "ready" and "Pelicans" in done["pdf"]["content"]
    assert done["redirects"]["status"] == "ready"
    assert done["hang"]["status"] == "failed" and "timed out" in done["hang"]["error"]
    assert done["endless"]["status"] == "failed" and "larger than the limit" in done["endless"]["error"]
    assert done["too_large"]["status"] == "failed" and "more than the limit" in done["too_large"]["error"]
    assert done["loop"]["status"] == "failed" and "redirects" in done["loop"]["error"]
    assert done["missing"]["status"] == "failed" and "404" in done["missing"]["error"]
    hits = (await search(kn, "checkpoint", collection_id=collection["id"]))["hits"]
    assert hits and hits[0]["source_uri"] == page


async def test_private_addresses_are_refused_when_not_allowed(kn, kn_settings, monkeypatch):
    collection = await new_collection(kn)
    monkeypatch.setattr(kn_settings, "knowledge_allow_private_urls", False)
    with serving() as site:
        page = site.page("/page.html", ARTICLE)
        response = await kn.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": page})
        direct = await wait_for_document(kn, response.json()["id"])
        assert direct["status"] == "failed" and "KANBAN_KNOWLEDGE_ALLOW_PRIVATE_URLS" in direct["error"]
        assert site.hits == []  # refused before connecting

        # The server itself counts as public here: its redirects to private addresses are refused.
        refused = fetch._refused
        monkeypatch.setattr(fetch, "_refused", lambda address: str(address) != "127.0.0.1" and refused(address))
        for target, address in [
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("http://10.1.2.3/", "10.1.2.3"),
            ("http://[::1]:9/", "::1"),
            ("http://127.0.0.2:9/", "127.0.0.2"),
        ]:
            url = site.redirect(f"/to-{len(site.routes)}", target)
            response = await kn.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": url})
            document = await wait_for_document(kn, response.json()["id"])
            assert document["status"] == "failed" and "refused" in document["error"], document
            assert address in document["error"], document["error"]


async def test_re_adding_a_url_reuses_unchanged_chunks_and_embeds_only_the_changed_one(kn, kn_app, monkeypatch):
    collection = await new_collection(kn)
    sections = [f"## Part {i}\n\n" + f"Paragraph {i} about topic number {i}. " * 20 for i in range(6)]
    with serving() as site:
        url = site.page("/doc.md", "# Doc\n\n" + "\n\n".join(sections), "text/markdown")
        first = (await kn.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": url})).json()
        first = await wait_for_document(kn, first["id"])
        assert first["status"] == "ready" and first["chunk_count"] == 6
        async with kn_app.state.database.session() as session:
            ids_before = dict(
                (
                    await session.execute(
                        select(KnowledgeChunk.text_hash, KnowledgeChunk.id).where(
                            KnowledgeChunk.document_id == first["id"]
                        )
                    )
                ).all()
            )
            embedded_before = dict(
                (
                    await session.execute(
                        select(KnowledgeChunk.id, KnowledgeChunk.embedding).where(
                            KnowledgeChunk.document_id == first["id"]
                        )
                    )
                ).all()
            )
        assert all(embedded_before.values()), "every chunk is embedded"
        embedder = embeddings.get_embedder(kn_app.state.settings)
        embedded_texts: list[str] = []
        embed_passages = embedder.embed_passages

        def spy(texts):
            embedded_texts.extend(texts)
            return embed_passages(texts)

        monkeypatch.setattr(embedder, "embed_passages", spy)
        sections[2] = "## Part 2\n\nThis part was rewritten completely."
        site.page("/doc.md", "# Doc\n\n" + "\n\n".join(sections), "text/markdown")
        again = await kn.post(f"/api/knowledge/collections/{collection['id']}/urls", json={"url": url})
        assert again.status_code == 202 and again.json()["id"] == first["id"]
        second = await wait_for_document(kn, first["id"])
    assert second["status"] == "ready" and second["content_hash"] != first["content_hash"]
    async with kn_app.state.database.session() as session:
        ids_after = dict(
            (
                await session.execute(
                    select(KnowledgeChunk.text_hash, KnowledgeChunk.id).where(KnowledgeChunk.document_id == first["id"])
                )
            ).all()
        )
        embedded_after = dict(
            (
                await session.execute(
                    select(KnowledgeChunk.id, KnowledgeChunk.embedding).where(KnowledgeChunk.document_id == first["id"])
                )
            ).all()
        )
    kept = ids_before.keys() & ids_after.keys()
    assert len(kept) == 5 and all(ids_before[h] == ids_after[h] for h in kept)
    assert len(ids_after) == 6
    assert embedded_texts == ["Doc › Part 2\n\nThis part was rewritten completely."]  # the URL is no title
    assert all(embedded_after[ids_after[h]] == embedded_before[ids_before[h]] for h in kept)
    assert all(embedded_after.values())
    hits = (await search(kn, "rewritten completely", collection_id=collection["id"], mode="keyword"))["hits"]
    assert hits and hits[0]["heading"] == "Doc › Part 2"


async def test_bindings_one_write_collection_per_project(kn):
    project = await create_project(kn)
    a, b = await new_collection(kn), await new_collection(kn)
    own = await new_collection(kn, scope="project", project_id=project["id"])
    bindings = (await kn.get(f"/api/projects/{project['id']}/knowledge")).json()
    assert [(x["collection_id"], x["can_write"]) for x in bindings] == [(own["id"], True)]
    response = await kn.put(f"/api/projects/{project['id']}/knowledge/{a['id']}", json={"can_write": True})
    assert response.status_code == 200 and response.json()["can_write"] is True
    await kn.put(f"/api/projects/{project['id']}/knowledge/{b['id']}", json={})
    bindings = {
        x["collection_id"]: x["can_write"] for x in (await kn.get(f"/api/projects/{project['id']}/knowledge")).json()
    }
    assert bindings == {own["id"]: False, a["id"]: True, b["id"]: False}
    collection = (await kn.get(f"/api/knowledge/collections/{a['id']}")).json()
    assert collection["projects"] == [{"project_id": project["id"], "project_name": project["name"], "can_write": True}]

    # Search by project: only its bound collections.
    note = {"title": "Bound", "content": "zebra crossing rules for the bound collection"}
    in_b = (await kn.post(f"/api/knowledge/collections/{b['id']}/notes", json=note)).json()
    other = await new_collection(kn)
    outside = (await kn.post(f"/api/knowledge/collections/{other['id']}/notes", json={**note, "title": "Other"})).json()
    await wait_for_document(kn, in_b["id"])
    await wait_for_document(kn, outside["id"])
    hits = (await search(kn, "zebra crossing", project_id=project["id"], mode="keyword"))["hits"]
    assert {h["document_id"] for h in hits} == {in_b["id"]}

    assert (await kn.delete(f"/api/projects/{project['id']}/knowledge/{b['id']}")).status_code == 204
    assert (await kn.delete(f"/api/projects/{project['id']}/knowledge/{b['id']}")).status_code == 404
    other_project = await create_project(kn)
    response = await kn.put(f"/api/projects/{other_project['id']}/knowledge/{own['id']}", json={})
    assert response.status_code == 409


async def test_a_project_without_a_write_collection_gets_its_own_named_after_it(kn):
    project = await create_project(kn)
    await new_collection(kn, name=project["name"])  # the name is taken: the key goes with it
    url = f"/api/projects/{project['id']}/knowledge/write-collection"
    made = await kn.post(url)
    assert made.status_code == 200, made.text
    expected = f"{project['name']} ({project['key']})"
    assert made.json()["collection_name"] == expected and made.json()["can_write"] is True
    collection = (await kn.get(f"/api/knowledge/collections/{made.json()['collection_id']}")).json()
    assert collection["scope"] == "project" and collection["project_id"] == project["id"]
    again = await kn.post(url)  # there is one now: the same
    assert again.json() == made.json()
    bindings = (await kn.get(f"/api/projects/{project['id']}/knowledge")).json()
    assert [(b["collection_name"], b["can_write"]) for b in bindings] == [(expected, True)]
    assert (await kn.post("/api/projects/2147483647/knowledge/write-collection")).status_code == 404


async def test_a_project_bound_to_nothing_finds_nothing_and_unknown_ids_are_404(kn):
    project = await create_project(kn)
    collection = await new_collection(kn)
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/notes", json={"title": "Loose", "content": "Platypus facts."}
    )
    await wait_for_document(kn, response.json()["id"])
    for mode in ("keyword", "hybrid", "semantic"):
        assert len((await search(kn, "platypus", collection_id=collection["id"], mode=mode))["hits"]) == 1
        assert (await search(kn, "platypus", project_id=project["id"], mode=mode))["hits"] == []
        both = await search(kn, "platypus", project_id=project["id"], collection_id=collection["id"], mode=mode)
        assert both["hits"] == []
        for params, missing in (
            ({"collection_id": [collection["id"], 999999]}, "Collection 999999 not found"),
            ({"collection_id": [999998, collection["id"]]}, "Collection 999998 not found"),
            ({"project_id": 999999}, "Project 999999 not found"),
        ):
            answer = await kn.get("/api/knowledge/search", params={"q": "platypus", "mode": mode, **params})
            assert answer.status_code == 404 and answer.json()["detail"] == missing, answer.text


async def test_status_and_document_listing(kn):
    collection = await new_collection(kn)
    note = (
        await kn.post(
            f"/api/knowledge/collections/{collection['id']}/notes", json={"title": "T", "content": "status check"}
        )
    ).json()
    await wait_for_document(kn, note["id"])
    listed = (await kn.get(f"/api/knowledge/collections/{collection['id']}/documents", params={"kind": "note"})).json()
    assert [d["id"] for d in listed] == [note["id"]] and "content" not in listed[0]
    assert (
        await kn.get(f"/api/knowledge/collections/{collection['id']}/documents", params={"kind": "url"})
    ).json() == []
    status = (await kn.get("/api/knowledge/status")).json()
    assert status["embedding"]["state"] in {"off", "not_loaded", "ready", "unavailable"}
    assert all(d["status"] not in ("ready", "failed") for d in status["queue"])
    response = await kn.post(f"/api/knowledge/documents/{note['id']}/reingest")
    assert response.status_code == 202
    assert (await wait_for_document(kn, note["id"]))["status"] == "ready"
    assert (await kn.delete(f"/api/knowledge/documents/{note['id']}")).status_code == 204
    assert (await kn.get(f"/api/knowledge/documents/{note['id']}")).status_code == 404


async def test_hybrid_search_finds_by_meaning_and_by_words(kn):
    collection = await new_collection(kn)
    notes = {
        "espresso": ("Espresso at home", "Grind the beans finely, tamp firmly and pull the shot for about 25 seconds."),
        "tyres": ("Bicycle tyres", "Pump road bike tyres to six or seven bar; check the pressure every week."),
        "tea": ("Green tea", "Brew green tea at 80 degrees for two minutes; boiling water makes it bitter."),
    }
    ids = {}
    for key, (title, content) in notes.items():
        response = await kn.post(
            f"/api/knowledge/collections/{collection['id']}/notes", json={"title": title, "content": content}
        )
        ids[key] = (await wait_for_document(kn, response.json()["id"]))["id"]
    result = await search(kn, "preparing coffee", collection_id=collection["id"])
    assert result["mode_used"] == "hybrid" and result["semantic"]["state"] == "ready"
    assert result["hits"][0]["document_id"] == ids["espresso"] and result["hits"][0]["match"] == "semantic"
    semantic = await search(kn, "inflating wheels", collection_id=collection["id"], mode="semantic")
    assert semantic["mode_used"] == "semantic" and semantic["hits"][0]["document_id"] == ids["tyres"]
    both = await search(kn, "brew green tea", collection_id=collection["id"])
    assert both["hits"][0]["document_id"] == ids["tea"] and both["hits"][0]["match"] == "both"
    assert "«" in both["hits"][0]["snippet"]
    assert (await search(kn, "brew", collection_id=collection["id"], kind="url"))["hits"] == []


async def test_without_a_model_keyword_search_still_answers_and_says_why(kn, kn_settings, monkeypatch, tmp_path):
    monkeypatch.setattr(kn_settings, "knowledge_model_path", tmp_path)  # a folder without a model
    collection = await new_collection(kn)
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/notes",
        json={"title": "Kiwi", "content": "Kiwis are flightless birds."},
    )
    note = await wait_for_document(kn, response.json()["id"])
    assert note["status"] == "ready" and note["error"].startswith("Not embedded"), note
    result = await search(kn, "flightless kiwis", collection_id=collection["id"])
    assert result["mode_used"] == "keyword" and result["semantic"]["state"] == "unavailable"
    assert "model" in result["semantic"]["message"].lower()
    assert [h["document_id"] for h in result["hits"]] == [note["id"]]
    status = (await kn.get("/api/knowledge/status")).json()
    assert status["embedding"]["state"] == "unavailable"


async def test_identifiers_are_found_alike_on_both_databases(kn):
    collection = await new_collection(kn)
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/notes",
        json={
            "title": "Kettle sheet",
            "content": "The VE-107 kettle boils a litre in three minutes. See O'Brien's note.",
        },
    )
    note = await wait_for_document(kn, response.json()["id"])
    for query in ("VE-107", "107", "ve 107", "O'Brien", "kettles boiling"):
        hits = (await search(kn, query, collection_id=collection["id"], mode="keyword"))["hits"]
        assert [h["document_id"] for h in hits] == [note["id"]], query


async def test_every_status_change_is_a_board_event_after_its_row(kn, kn_app):
    from backend.models import BoardEvent

    collection = await new_collection(kn)
    async with kn_app.state.database.session() as session:
        start = await session.scalar(select(func.max(BoardEvent.id))) or 0
    response = await kn.post(
        f"/api/knowledge/collections/{collection['id']}/notes", json={"title": "Evented", "content": "Watch me move."}
    )
    note = await wait_for_document(kn, response.json()["id"])
    assert (await kn.delete(f"/api/knowledge/documents/{note['id']}")).status_code == 204
    assert (await kn.delete(f"/api/knowledge/collections/{collection['id']}")).status_code == 204
    async with kn_app.state.database.session() as session:
        events = (await session.scalars(select(BoardEvent).where(BoardEvent.id > start).order_by(BoardEvent.id))).all()
    mine = [
        (e.type, e.payload.get("status"))
        for e in events
        if e.type.startswith("knowledge.") and (e.payload.get("id") in (note["id"], collection["id"]))
    ]
    assert mine == [
        ("knowledge.document_updated", "pending"),
        ("knowledge.document_updated", "chunking"),
        ("knowledge.document_updated", "embedding"),
        ("knowledge.document_updated", "ready"),
        ("knowledge.document_deleted", None),
        ("knowledge.collection_deleted", None),
    ]


@pytest.mark.parametrize("status", ["pending", "chunking", "embedding"])
async def test_the_worker_takes_up_a_document_left_at_any_step(kn, kn_app, status):
    """What a server that stopped mid-way leaves behind: rows at each status, nobody woken."""
    from backend.knowledge import service
    from backend.knowledge.chunking import chunk_markdown
    from backend.models import DocumentStatus

    collection = await new_collection(kn)
    content = f"# Left at {status}\n\nThe ingestion stopped here and must go on by itself."
    async with kn_app.state.database.session(write=True) as session:
        document = KnowledgeDocument(
            collection_id=collection["id"],
            title=f"Left at {status}",
            kind="note",
            content=content,
            content_hash=service.sha256(content),
            status=status,
        )
        session.add(document)
        await session.flush()
        if status == DocumentStatus.embedding.value:
            changes = await service.replace_chunks(session, document, chunk_markdown(content))
            document.chunk_count = changes.added
        document_id = document.id
    done = await wait_for_document(kn, document_id, timeout=30)  # the worker's poll finds it
    assert done["status"] == "ready" and done["chunk_count"] >= 1 and done["error"] is None, done
    async with kn_app.state.database.session() as session:
        embedded = (
            await session.scalars(select(KnowledgeChunk.model).where(KnowledgeChunk.document_id == document_id))
        ).all()
    assert embedded and all(model == "local:all-MiniLM-L6-v2" for model in embedded)


async def test_a_filtered_search_finds_what_ranks_below_other_collections_hits(kn, monkeypatch):
    from backend.knowledge import search as knowledge_search

    monkeypatch.setattr(knowledge_search, "CANDIDATES", 2)
    monkeypatch.setattr(knowledge_search, "OVERFETCH", 1)
    crowded, small = await new_collection(kn), await new_collection(kn)
    for n in range(3):
        body = {"title": f"Quokka {n}", "content": f"Quokka quokka quokka facts, part {n}."}
        response = await kn.post(f"/api/knowledge/collections/{crowded['id']}/notes", json=body)
        await wait_for_document(kn, response.json()["id"])
    body = {
        "title": "Island fauna",
        "content": "Rottnest Island has many animals; the quokka is one of them, as are gulls.",
    }
    response = await kn.post(f"/api/knowledge/collections/{small['id']}/notes", json=body)
    lone = await wait_for_document(kn, response.json()["id"])
    hits = (await search(kn, "quokka", collection_id=small["id"], mode="keyword"))["hits"]
    assert [h["document_id"] for h in hits] == [lone["id"]] and "«quokka»" in hits[0]["snippet"].lower()
