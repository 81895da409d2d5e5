import { describe, expect, it, vi } from 'vitest';
import {
	bindingOf,
	followKnowledgeEvents,
	KnowledgeState,
	progressOf,
	ProjectKnowledge,
	snippetParts,
	type Collection,
	type DocumentSummary,
	type KnowledgeApi
} from './knowledge.svelte';
import { ApiError } from '$lib/api/client';
import { FakeEventSource } from '$lib/test/fake-event-source';

function collection(id: number, extra: Partial<Collection> = {}): Collection {
	return {
		id,
		name: `c${id}`,
		description: '',
		scope: 'global',
		project_id: null,
		document_count: 0,
		chunk_count: 0,
		projects: [],
		created_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		...extra
	} as Collection;
}

function doc(id: number, extra: Partial<DocumentSummary> = {}): DocumentSummary {
	return {
		id,
		collection_id: 1,
		title: `Doc ${id}`,
		kind: 'note',
		source_uri: null,
		content_hash: `h${id}`,
		status: 'pending',
		error: null,
		task_id: null,
		run_id: null,
		supersedes_id: null,
		media_type: 'text/markdown',
		size_bytes: 10,
		chunk_count: 0,
		created_at: `2026-01-01T00:00:0${id}Z`,
		updated_at: `2026-01-01T00:00:0${id}Z`,
		...extra
	} as DocumentSummary;
}

function fakeApi(overrides: Partial<KnowledgeApi> = {}): KnowledgeApi {
	return {
		status: vi.fn(),
		listCollections: vi.fn(async () => []),
		createCollection: vi.fn(),
		updateCollection: vi.fn(),
		deleteCollection: vi.fn(async () => undefined),
		listDocuments: vi.fn(async () => []),
		addNote: vi.fn(),
		addUrl: vi.fn(),
		uploadFile: vi.fn(),
		getDocument: vi.fn(),
		deleteDocument: vi.fn(async () => undefined),
		reingest: vi.fn(),
		search: vi.fn(),
		projectBindings: vi.fn(async () => []),
		bind: vi.fn(),
		unbind: vi.fn(),
		saveRun: vi.fn(),
		...overrides
	} as KnowledgeApi;
}

describe('snippetParts', () => {
	it('splits a snippet at the «» marks, keeping everything else as text', () => {
		expect(snippetParts('The «retry» policy «backs» off')).toEqual([
			{ text: 'The ', mark: false },
			{ text: 'retry', mark: true },
			{ text: ' policy ', mark: false },
			{ text: 'backs', mark: true },
			{ text: ' off', mark: false }
		]);
		expect(snippetParts('no marks')).toEqual([{ text: 'no marks', mark: false }]);
		// Markup in a snippet stays text: it is never HTML.
		expect(snippetParts('<b>«x»</b>')).toEqual([
			{ text: '<b>', mark: false },
			{ text: 'x', mark: true },
			{ text: '</b>', mark: false }
		]);
		expect(snippetParts('an unpaired « mark')).toEqual([{ text: 'an unpaired « mark', mark: false }]);
	});

	it('has a progress for every status', () => {
		expect(progressOf('pending')).toBeCloseTo(0.2);
		expect(progressOf('embedding')).toBeCloseTo(0.8);
		expect(progressOf('ready')).toBe(1);
		expect(progressOf('failed')).toBe(1);
	});
});

describe('KnowledgeState', () => {
	it('loads the collections sorted, selects the first and reads its documents newest first', async () => {
		const listDocuments = vi.fn(async () => [doc(1), doc(3), doc(2)]);
		const state = new KnowledgeState(
			fakeApi({ listCollections: vi.fn(async () => [collection(2, { name: 'b' }), collection(1, { name: 'a' })]), listDocuments })
		);
		await state.load();
		expect(state.collections.map((c) => c.name)).toEqual(['a', 'b']);
		expect(state.selectedId).toBe(1);
		expect(listDocuments).toHaveBeenCalledWith(1);
		expect(state.documents.map((d) => d.id)).toEqual([3, 2, 1]);
		expect(state.documentsFor).toBe(1);
	});

	it('shows the API’s detail when loading fails', async () => {
		const state = new KnowledgeState(fakeApi({ listCollections: vi.fn().mockRejectedValue(new ApiError(500, 'database down', null)) }));
		await state.load();
		expect(state.loadError).toBe('database down');
		expect(state.loaded).toBe(false);
	});

	it('follows document status events of the shown collection, and counts new documents', async () => {
		const state = new KnowledgeState(fakeApi({ listCollections: vi.fn(async () => [collection(1), collection(2)]) }));
		await state.load();
		state.applyEvent({ type: 'knowledge.document_updated', payload: doc(5, { status: 'fetching', updated_at: '2026-01-01T00:01:00Z' }) });
		expect(state.documents.map((d) => [d.id, d.status])).toEqual([[5, 'fetching']]);
		expect(state.get(1)!.document_count).toBe(1);
		// A later status replaces it; an older one arriving late does not.
		state.applyEvent({ type: 'knowledge.document_updated', payload: doc(5, { status: 'ready', updated_at: '2026-01-01T00:02:00Z' }) });
		state.applyEvent({ type: 'knowledge.document_updated', payload: doc(5, { status: 'chunking', updated_at: '2026-01-01T00:01:30Z' }) });
		expect(state.documents[0].status).toBe('ready');
		expect(state.get(1)!.document_count).toBe(1);
		// Another collection's documents are not shown.
		state.applyEvent({ type: 'knowledge.document_updated', payload: doc(6, { collection_id: 2 }) });
		expect(state.documents.map((d) => d.id)).toEqual([5]);
		state.applyEvent({ type: 'knowledge.document_deleted', payload: { id: 5, collection_id: 1 } });
		expect(state.documents).toEqual([]);
		expect(state.get(1)!.document_count).toBe(0);
	});

	it('applies collection events and moves on when the shown collection is deleted', async () => {
		const listDocuments = vi.fn(async () => []);
		const state = new KnowledgeState(fakeApi({ listCollections: vi.fn(async () => [collection(1), collection(2)]), listDocuments }));
		await state.load();
		state.applyEvent({ type: 'knowledge.collection_created', payload: collection(3, { name: 'c0' }) });
		expect(state.collections.map((c) => c.id)).toEqual([3, 1, 2]);
		state.applyEvent({ type: 'knowledge.collection_updated', payload: collection(1, { name: 'renamed', updated_at: '2026-01-02T00:00:00Z' }) });
		expect(state.get(1)!.name).toBe('renamed');
		state.applyEvent({ type: 'knowledge.collection_deleted', payload: { id: 1, name: 'renamed' } });
		expect(state.get(1)).toBeUndefined();
		await vi.waitFor(() => expect(state.selectedId).toBe(3));
		expect(listDocuments).toHaveBeenLastCalledWith(3);
	});

	it('searches with the filters, keeps only the newest answer, and clears', async () => {
		let answer!: (value: unknown) => void;
		const search = vi
			.fn()
			.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)))
			.mockResolvedValueOnce({ query: 'new', mode_used: 'keyword', semantic: { state: 'off' }, hits: [{ document_id: 9 }] });
		const state = new KnowledgeState(fakeApi({ search }));
		state.filters = { collectionIds: [4], kind: 'url' };
		const first = state.search(' old ');
		const second = state.search('new');
		await second;
		answer({ query: 'old', mode_used: 'keyword', semantic: { state: 'off' }, hits: [] });
		await first;
		expect(search).toHaveBeenNthCalledWith(1, { q: 'old', collection_id: [4], kind: 'url' });
		expect(state.results?.query).toBe('new');
		expect(state.searching).toBe(false);
		// A deleted document leaves the results.
		state.applyEvent({ type: 'knowledge.document_deleted', payload: { id: 9, collection_id: 4 } });
		expect(state.results?.hits).toEqual([]);
		await state.search('   ');
		expect(state.results).toBeNull();
		expect(search).toHaveBeenCalledTimes(2);
	});

	it('reports a refused search (422) as its message', async () => {
		const state = new KnowledgeState(fakeApi({ search: vi.fn().mockRejectedValue(new ApiError(422, 'q: give some words to search for', null)) }));
		await state.search('x');
		expect(state.searchError).toBe('q: give some words to search for');
		expect(state.results).toBeNull();
	});

	it('sets a project’s access and reads every collection again (write moves between them)', async () => {
		const bind = vi.fn(async () => ({}));
		const unbind = vi.fn(async () => undefined);
		const listCollections = vi.fn(async () => [
			collection(1, { projects: [{ project_id: 7, project_name: 'P', can_write: true }] })
		]);
		const state = new KnowledgeState(fakeApi({ bind, unbind, listCollections } as unknown as Partial<KnowledgeApi>));
		await state.setBinding(1, 7, 'write');
		expect(bind).toHaveBeenCalledWith(7, 1, true);
		expect(bindingOf(state.get(1)!, 7)).toEqual({ read: true, write: true });
		expect(bindingOf(state.get(1)!, 8)).toEqual({ read: false, write: false });
		await state.setBinding(1, 7, 'read');
		expect(bind).toHaveBeenLastCalledWith(7, 1, false);
		await state.setBinding(1, 7, 'none');
		expect(unbind).toHaveBeenCalledWith(7, 1);
	});

	it('adds a note (no source when blank) and shows it at once', async () => {
		const addNote = vi.fn(async () => ({ ...doc(4), content: 'x', unchanged: false }));
		const state = new KnowledgeState(fakeApi({ listCollections: vi.fn(async () => [collection(1)]), addNote } as Partial<KnowledgeApi>));
		await state.load();
		await state.addNote(1, 'T', 'text', '  ');
		expect(addNote).toHaveBeenCalledWith(1, { title: 'T', content: 'text' });
		await state.addNote(1, 'T', 'text', ' https://a.example ');
		expect(addNote).toHaveBeenLastCalledWith(1, { title: 'T', content: 'text', source_uri: 'https://a.example' });
		expect(state.documents.map((d) => d.id)).toEqual([4]);
	});

	it('reads the open document again when its content changed', async () => {
		const getDocument = vi
			.fn()
			.mockResolvedValueOnce({ ...doc(2, { status: 'fetching' }), content: '' })
			.mockResolvedValueOnce({ ...doc(2, { status: 'ready', content_hash: 'new' }), content: 'fetched text' });
		const state = new KnowledgeState(fakeApi({ getDocument }));
		await state.openDocument(2);
		state.applyEvent({
			type: 'knowledge.document_updated',
			payload: doc(2, { status: 'ready', content_hash: 'new', updated_at: '2026-01-01T00:05:00Z' })
		});
		await vi.waitFor(() => expect(state.document?.content).toBe('fetched text'));
		expect(getDocument).toHaveBeenCalledTimes(2);
		state.applyEvent({ type: 'knowledge.document_deleted', payload: { id: 2, collection_id: 1 } });
		expect(state.document).toBeNull();
	});
});

describe('ProjectKnowledge', () => {
	it('searches the project’s collections and forgets the search when the project changes', async () => {
		const search = vi.fn(async () => ({ query: 'q', mode_used: 'hybrid', semantic: { state: 'ready' }, hits: [] }));
		const projectBindings = vi.fn(async (id: number) => [
			{ project_id: id, collection_id: 1, collection_name: 'a', can_write: false },
			{ project_id: id, collection_id: 2, collection_name: 'b', can_write: true }
		]);
		const state = new ProjectKnowledge(fakeApi({ search, projectBindings } as Partial<KnowledgeApi>));
		await state.load(3);
		expect(state.writesTo?.collection_name).toBe('b');
		state.query = 'retry';
		await state.search();
		expect(search).toHaveBeenCalledWith({ q: 'retry', project_id: 3, limit: 8 });
		expect(state.results).not.toBeNull();
		await state.load(4);
		expect(state.query).toBe('');
		expect(state.results).toBeNull();
	});

	it('says why a document cannot be opened', async () => {
		const state = new ProjectKnowledge(fakeApi({ getDocument: vi.fn().mockRejectedValue(new ApiError(404, 'Document 9 not found', null)) }));
		await state.open(9);
		expect(state.documentError).toBe('Document 9 not found');
	});
});

describe('followKnowledgeEvents', () => {
	it('listens to knowledge events on the stream without a project, and resyncs after a drop', () => {
		FakeEventSource.all = [];
		const onEvent = vi.fn();
		const onResync = vi.fn();
		const stop = followKnowledgeEvents(onEvent, onResync, (url) => new FakeEventSource(url) as unknown as EventSource);
		const source = FakeEventSource.all[0];
		expect(source.url).toBe('/api/events');
		expect([...source.listeners.keys()]).toEqual([
			'knowledge.collection_created',
			'knowledge.collection_updated',
			'knowledge.collection_deleted',
			'knowledge.document_updated',
			'knowledge.document_deleted'
		]);
		source.open();
		source.dispatch('knowledge.document_deleted', { data: JSON.stringify({ payload: { id: 1, collection_id: 2 } }) });
		expect(onEvent).toHaveBeenCalledWith({ type: 'knowledge.document_deleted', payload: { id: 1, collection_id: 2 } });
		source.drop(0);
		source.open();
		expect(onResync).toHaveBeenCalledTimes(1);
		stop();
		expect(source.closed).toBe(true);
	});
});
