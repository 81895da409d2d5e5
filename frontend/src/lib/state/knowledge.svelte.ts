/**
 * The Knowledge page's data: collections (with their bound projects), the documents of the
 * selected collection with their live ingestion status (`knowledge.*` events of the unfiltered
 * live stream), search, and the document being read.
 */
import { errorMessage, knowledgeApi, type KnowledgeApi } from '$lib/api/client';
import {
	KNOWLEDGE_EVENT_TYPES,
	type Collection,
	type CollectionCreate,
	type CollectionUpdate,
	type DocumentKind,
	type DocumentStatus,
	type DocumentSummary,
	type KnowledgeBinding,
	type KnowledgeDocument,
	type KnowledgeEvent,
	type KnowledgeHit,
	type KnowledgeSearch
} from '$lib/api/types';
import { followEvents } from '$lib/events/follow';

export type {
	Collection,
	DocumentKind,
	DocumentStatus,
	DocumentSummary,
	KnowledgeApi,
	KnowledgeBinding,
	KnowledgeDocument,
	KnowledgeEvent,
	KnowledgeHit
};

export const KIND_LABELS: Record<DocumentKind, string> = {
	note: 'Note',
	file: 'File',
	url: 'Web page',
	task_result: 'Task result'
};

export const STATUS_LABELS: Record<DocumentStatus, string> = {
	pending: 'Queued',
	fetching: 'Fetching',
	chunking: 'Chunking',
	embedding: 'Embedding',
	ready: 'Ready',
	failed: 'Failed'
};

/** How far along ingestion is, 0-1 (failed counts as done). */
export function progressOf(status: DocumentStatus): number {
	const steps: DocumentStatus[] = ['pending', 'fetching', 'chunking', 'embedding', 'ready'];
	return status === 'failed' ? 1 : (steps.indexOf(status) + 1) / steps.length;
}

export const isWorking = (status: DocumentStatus) => status !== 'ready' && status !== 'failed';

/** A snippet's parts: the API marks matched words between « and ». */
export function snippetParts(snippet: string): { text: string; mark: boolean }[] {
	const parts: { text: string; mark: boolean }[] = [];
	const re = /«([^«»]*)»/g;
	let last = 0;
	for (let m = re.exec(snippet); m; m = re.exec(snippet)) {
		if (m.index > last) parts.push({ text: snippet.slice(last, m.index), mark: false });
		if (m[1]) parts.push({ text: m[1], mark: true });
		last = m.index + m[0].length;
	}
	if (last < snippet.length) parts.push({ text: snippet.slice(last), mark: false });
	return parts;
}

/** A project's binding to a collection, as the switches show it. */
export function bindingOf(collection: Collection, projectId: number): { read: boolean; write: boolean } {
	const bound = (collection.projects ?? []).find((p) => p.project_id === projectId);
	return { read: !!bound, write: !!bound?.can_write };
}

export type SearchFilters = { collectionIds: number[]; kind: DocumentKind | null };

export class KnowledgeState {
	collections = $state<Collection[]>([]);
	loaded = $state(false);
	loadError = $state<string | null>(null);

	/** The collection whose documents are shown. */
	selectedId = $state<number | null>(null);
	documents = $state<DocumentSummary[]>([]);
	documentsFor = $state<number | null>(null);
	documentsError = $state<string | null>(null);

	// ---- search ----
	query = $state('');
	filters = $state<SearchFilters>({ collectionIds: [], kind: null });
	results = $state<KnowledgeSearch | null>(null);
	searching = $state(false);
	searchError = $state<string | null>(null);

	// ---- the open document ----
	document = $state<KnowledgeDocument | null>(null);
	documentError = $state<string | null>(null);

	#api: KnowledgeApi;
	#searchSeq = 0;
	#documentsSeq = 0;
	#documentSeq = 0;

	constructor(api: KnowledgeApi = knowledgeApi) {
		this.#api = api;
	}

	get selected(): Collection | undefined {
		return this.collections.find((c) => c.id === this.selectedId);
	}

	get(id: number | null | undefined): Collection | undefined {
		return id == null ? undefined : this.collections.find((c) => c.id === id);
	}

	load = async () => {
		try {
			this.collections = sortCollections(await this.#api.listCollections());
			this.loadError = null;
			this.loaded = true;
			if (this.selectedId != null && !this.get(this.selectedId)) this.selectedId = null;
			if (this.selectedId == null && this.collections.length) await this.select(this.collections[0].id);
			else if (this.selectedId != null) await this.loadDocuments();
		} catch (err) {
			this.loadError = errorMessage(err);
		}
	};

	select = async (id: number | null) => {
		this.selectedId = id;
		await this.loadDocuments();
	};

	loadDocuments = async () => {
		const id = this.selectedId;
		const seq = ++this.#documentsSeq;
		if (id == null) {
			this.documents = [];
			this.documentsFor = null;
			return;
		}
		try {
			const docs = await this.#api.listDocuments(id);
			if (seq !== this.#documentsSeq) return;
			this.documents = sortDocuments(docs);
			this.documentsFor = id;
			this.documentsError = null;
		} catch (err) {
			if (seq === this.#documentsSeq) this.documentsError = errorMessage(err);
		}
	};

	// ---- collections ----

	create = async (body: CollectionCreate): Promise<Collection> => {
		const made = await this.#api.createCollection(body);
		this.#upsertCollection(made);
		await this.select(made.id);
		return made;
	};

	update = async (id: number, body: CollectionUpdate): Promise<Collection> => {
		const changed = await this.#api.updateCollection(id, body);
		this.#upsertCollection(changed);
		return changed;
	};

	remove = async (id: number): Promise<void> => {
		await this.#api.deleteCollection(id);
		this.#dropCollection(id);
	};

	/**
	 * A project's access to a collection: none, read, or read and write. Writing here takes it
	 * from the project's other collection, so every collection is read again afterwards.
	 */
	setBinding = async (collectionId: number, projectId: number, access: 'none' | 'read' | 'write') => {
		if (access === 'none') await this.#api.unbind(projectId, collectionId);
		else await this.#api.bind(projectId, collectionId, access === 'write');
		this.collections = sortCollections(await this.#api.listCollections());
	};

	// ---- documents ----

	addNote = async (collectionId: number, title: string, content: string, sourceUri?: string) => {
		const doc = await this.#api.addNote(collectionId, {
			title,
			content,
			...(sourceUri?.trim() ? { source_uri: sourceUri.trim() } : {})
		});
		this.#upsertDocument(doc);
		return doc;
	};

	addUrl = async (collectionId: number, url: string, title?: string) => {
		const doc = await this.#api.addUrl(collectionId, { url, ...(title?.trim() ? { title: title.trim() } : {}) });
		this.#upsertDocument(doc);
		return doc;
	};

	upload = async (collectionId: number, file: File, title?: string) => {
		const doc = await this.#api.uploadFile(collectionId, file, title?.trim() || undefined);
		this.#upsertDocument(doc);
		return doc;
	};

	reingest = async (id: number) => {
		this.#upsertDocument(await this.#api.reingest(id));
	};

	deleteDocument = async (id: number) => {
		const doc = this.documents.find((d) => d.id === id);
		await this.#api.deleteDocument(id);
		this.#dropDocument(id, doc?.collection_id ?? this.document?.collection_id);
	};

	openDocument = async (id: number) => {
		const seq = ++this.#documentSeq;
		this.documentError = null;
		try {
			const doc = await this.#api.getDocument(id);
			if (seq === this.#documentSeq) this.document = doc;
		} catch (err) {
			if (seq === this.#documentSeq) {
				this.document = null;
				this.documentError = errorMessage(err);
			}
		}
	};

	closeDocument = () => {
		this.#documentSeq++;
		this.document = null;
		this.documentError = null;
	};

	// ---- search ----

	search = async (q = this.query, filters = this.filters) => {
		const query = q.trim();
		const seq = ++this.#searchSeq;
		if (!query) {
			this.results = null;
			this.searchError = null;
			this.searching = false;
			return;
		}
		this.searching = true;
		try {
			const found = await this.#api.search({
				q: query,
				...(filters.collectionIds.length ? { collection_id: filters.collectionIds } : {}),
				...(filters.kind ? { kind: filters.kind } : {})
			});
			if (seq !== this.#searchSeq) return;
			this.results = found;
			this.searchError = null;
		} catch (err) {
			if (seq !== this.#searchSeq) return;
			this.results = null;
			this.searchError = errorMessage(err);
		} finally {
			if (seq === this.#searchSeq) this.searching = false;
		}
	};

	clearSearch = () => {
		this.#searchSeq++;
		this.query = '';
		this.results = null;
		this.searchError = null;
		this.searching = false;
	};

	// ---- live events ----

	applyEvent = (event: KnowledgeEvent) => {
		switch (event.type) {
			case 'knowledge.collection_created':
			case 'knowledge.collection_updated':
				this.#upsertCollection(event.payload);
				break;
			case 'knowledge.collection_deleted':
				this.#dropCollection(event.payload.id);
				break;
			case 'knowledge.document_updated':
				this.#upsertDocument(event.payload);
				break;
			case 'knowledge.document_deleted':
				this.#dropDocument(event.payload.id, event.payload.collection_id);
				break;
		}
	};

	#upsertCollection(collection: Collection) {
		const current = this.get(collection.id);
		if (current && current.updated_at > collection.updated_at) return; // answers and events can cross
		this.collections = sortCollections([...this.collections.filter((c) => c.id !== collection.id), collection]);
	}

	#dropCollection(id: number) {
		this.collections = this.collections.filter((c) => c.id !== id);
		if (this.selectedId === id) void this.select(this.collections[0]?.id ?? null);
		if (this.document?.collection_id === id) this.closeDocument();
		if (this.filters.collectionIds.includes(id))
			this.filters = { ...this.filters, collectionIds: this.filters.collectionIds.filter((c) => c !== id) };
	}

	#upsertDocument(doc: DocumentSummary) {
		if (this.document?.id === doc.id && doc.updated_at >= this.document.updated_at) {
			// The open document's content changes once it is fetched: read it again when ready.
			const contentChanged = doc.content_hash !== this.document.content_hash;
			this.document = { ...this.document, ...doc };
			if (contentChanged || (doc.status === 'ready' && !this.document.content)) void this.openDocument(doc.id);
		}
		if (doc.collection_id !== this.documentsFor) return;
		const current = this.documents.find((d) => d.id === doc.id);
		if (current && current.updated_at > doc.updated_at) return;
		const isNew = !current;
		this.documents = sortDocuments([...this.documents.filter((d) => d.id !== doc.id), doc]);
		if (isNew) this.#count(doc.collection_id, 1);
	}

	#dropDocument(id: number, collectionId: number | undefined) {
		const had = this.documents.some((d) => d.id === id);
		this.documents = this.documents.filter((d) => d.id !== id);
		if (had && collectionId != null) this.#count(collectionId, -1);
		if (this.document?.id === id) this.closeDocument();
		if (this.results) this.results = { ...this.results, hits: this.results.hits.filter((h) => h.document_id !== id) };
	}

	#count(collectionId: number, delta: number) {
		this.collections = this.collections.map((c) =>
			c.id === collectionId ? { ...c, document_count: Math.max(0, (c.document_count ?? 0) + delta) } : c
		);
	}
}

/**
 * The task sidebar's knowledge search: the collections bound to the task's project, a search
 * over them, the document opened from a hit, and "Save to knowledge" for a run's result.
 */
export class ProjectKnowledge {
	projectId = $state<number | null>(null);
	bindings = $state<KnowledgeBinding[] | null>(null);
	bindingsError = $state<string | null>(null);
	query = $state('');
	results = $state<KnowledgeSearch | null>(null);
	searching = $state(false);
	searchError = $state<string | null>(null);
	document = $state<KnowledgeDocument | null>(null);
	documentError = $state<string | null>(null);

	#api: KnowledgeApi;
	#seq = 0;
	#docSeq = 0;

	constructor(api: KnowledgeApi = knowledgeApi) {
		this.#api = api;
	}

	get writesTo(): KnowledgeBinding | undefined {
		return this.bindings?.find((b) => b.can_write);
	}

	/** Follow a project: its bindings are read, the previous project's search is dropped. */
	load = async (projectId: number) => {
		if (projectId !== this.projectId) {
			this.projectId = projectId;
			this.bindings = null;
			this.#seq++;
			this.query = '';
			this.results = null;
			this.searchError = null;
			this.searching = false;
		}
		try {
			const found = await this.#api.projectBindings(projectId);
			if (projectId !== this.projectId) return;
			this.bindings = found;
			this.bindingsError = null;
		} catch (err) {
			if (projectId === this.projectId) this.bindingsError = errorMessage(err);
		}
	};

	search = async (q = this.query) => {
		const projectId = this.projectId;
		const query = q.trim();
		const seq = ++this.#seq;
		if (projectId == null || !query) {
			this.results = null;
			this.searchError = null;
			this.searching = false;
			return;
		}
		this.searching = true;
		try {
			const found = await this.#api.search({ q: query, project_id: projectId, limit: 8 });
			if (seq !== this.#seq) return;
			this.results = found;
			this.searchError = null;
		} catch (err) {
			if (seq !== this.#seq) return;
			this.results = null;
			this.searchError = errorMessage(err);
		} finally {
			if (seq === this.#seq) this.searching = false;
		}
	};

	open = async (documentId: number) => {
		const seq = ++this.#docSeq;
		this.document = null;
		this.documentError = null;
		try {
			const doc = await this.#api.getDocument(documentId);
			if (seq === this.#docSeq) this.document = doc;
		} catch (err) {
			if (seq === this.#docSeq) this.documentError = errorMessage(err);
		}
	};

	/** A run's result as a task_result document in the project's write collection. */
	saveRun = async (runId: number): Promise<KnowledgeDocument> => this.#api.saveRun(runId, {});
}

export const projectKnowledge = new ProjectKnowledge();

function sortCollections(items: Collection[]): Collection[] {
	return [...items].sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
}

/** Newest first. */
function sortDocuments(items: DocumentSummary[]): DocumentSummary[] {
	return [...items].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
}

/** The `knowledge.*` events of the live stream (see followEvents). */
export function followKnowledgeEvents(
	onEvent: (event: KnowledgeEvent) => void,
	onResync: () => void,
	create?: (url: string) => EventSource
): () => void {
	return followEvents<KnowledgeEvent>(KNOWLEDGE_EVENT_TYPES, onEvent, onResync, create);
}

export const knowledge = new KnowledgeState();
