/**
 * The only HTTP surface of the app. Every call is a relative /api/... URL: in production the
 * backend serves this build, in development Vite proxies /api (see vite.config.ts).
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import type {
	AgentsStatus,
	Approval,
	ApprovalChoice,
	Board,
	ChannelCreate,
	ChannelUpdate,
	Delivery,
	DeliveryStatus,
	NotificationChannel,
	Collection,
	CollectionCreate,
	CollectionUpdate,
	DocumentKind,
	DocumentStatus,
	DocumentSummary,
	KnowledgeBinding,
	KnowledgeDocument,
	KnowledgeSearch,
	KnowledgeSearchQuery,
	KnowledgeStatus,
	NoteCreate,
	RunKnowledgeSave,
	UrlCreate,
	Diff,
	Health,
	Plugin,
	PluginInstall,
	PluginTest,
	PluginUpdate,
	Project,
	ProjectCreate,
	ProjectDeletion,
	ProjectUpdate,
	Run,
	RunEventPage,
	RunSummary,
	SearchResults,
	Task,
	TaskCreate,
	TaskMove,
	TaskPage,
	TaskStatus,
	TaskUpdate,
	TemplateCatalog,
	Workflow,
	WorkflowCreate
} from './types';
import { auth } from '$lib/state/auth.svelte';

export class ApiError extends Error {
	readonly status: number;
	readonly detail: string;
	readonly body: unknown;

	constructor(status: number, detail: string, body: unknown) {
		super(detail);
		this.name = 'ApiError';
		this.status = status;
		this.detail = detail;
		this.body = body;
	}
}

/** What to tell the user about a failed call: the server's `detail`, else the error's message. */
export function errorMessage(err: unknown): string {
	return err instanceof ApiError ? err.detail : err instanceof Error ? err.message : String(err);
}

/** Turn FastAPI's `detail` (a string, or a list of validation errors) into one readable sentence. */
export function describeDetail(body: unknown, fallback: string): string {
	if (body && typeof body === 'object' && 'detail' in body) {
		const detail = (body as { detail: unknown }).detail;
		if (typeof detail === 'string' && detail) return detail;
		if (Array.isArray(detail) && detail.length) {
			return detail
				.map((d) => {
					if (d && typeof d === 'object' && 'msg' in d) {
						const loc = Array.isArray(d.loc) ? d.loc.filter((p: unknown) => p !== 'body').join('.') : '';
						return loc ? `${loc}: ${d.msg}` : String(d.msg);
					}
					return String(d);
				})
				.join('; ');
		}
	}
	if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
	return fallback;
}

/**
 * The messages of a refused request by the field they are about, for showing at that field:
 * a 422's `errors` (`loc` is the field's path, `allowed_tools.2` counts as `allowed_tools`), a
 * service's "field: message" detail, or a 409's `field`. `''` holds what names no field.
 */
export function fieldErrors(err: unknown, fields: readonly string[]): Record<string, string> {
	const found: Record<string, string> = {};
	const add = (field: string, message: string, where = field) => {
		const key = fields.includes(field) ? field : '';
		const text = key || !where ? message : `${where}: ${message}`;
		found[key] = found[key] ? `${found[key]}; ${text}` : text;
	};
	if (!(err instanceof ApiError)) {
		add('', errorMessage(err));
		return found;
	}
	const body = (err.body && typeof err.body === 'object' ? err.body : {}) as {
		errors?: unknown;
		field?: unknown;
	};
	if (Array.isArray(body.errors) && body.errors.length) {
		for (const item of body.errors as { loc?: unknown; msg?: unknown }[]) {
			const loc = Array.isArray(item.loc) ? item.loc.map(String) : [];
			const field = loc[0] === 'query' || loc[0] === 'path' ? (loc[1] ?? '') : (loc[0] ?? '');
			add(field, String(item.msg ?? 'invalid'), loc.filter((p) => p !== 'query' && p !== 'path').join('.'));
		}
		return found;
	}
	if (typeof body.field === 'string') {
		add(body.field, err.detail);
		return found;
	}
	const prefixed = /^([a-z_]+): (.+)$/s.exec(err.detail);
	if (prefixed && fields.includes(prefixed[1])) add(prefixed[1], prefixed[2]);
	else add('', err.detail);
	return found;
}

const authMiddleware: Middleware = {
	onRequest({ request }) {
		const token = auth.token;
		if (token) request.headers.set('Authorization', `Bearer ${token}`);
		return request;
	},
	onResponse({ response }) {
		if (response.status === 401) auth.requireToken();
		return response;
	}
};

function origin(): string {
	return typeof location !== 'undefined' ? location.origin : 'http://localhost';
}

/** The typed HTTP client (auth header, 401 → token prompt); pair it with `unwrap`. */
export const http = createClient<paths>({
	baseUrl: origin(),
	// Resolve fetch at call time so tests can replace globalThis.fetch.
	fetch: (request: Request) => globalThis.fetch(request)
});
http.use(authMiddleware);

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The response's data, or an `ApiError` with the server's `detail`. */
export async function unwrap<T>(promise: Promise<Result<T>>): Promise<T> {
	let result: Result<T>;
	try {
		result = await promise;
	} catch (err) {
		throw new ApiError(0, 'Cannot reach the server. Is `kanban serve` running?', err);
	}
	const { data, error, response } = result;
	if (!response.ok) {
		const fallback = `${response.status} ${response.statusText || 'error'}`.trim();
		throw new ApiError(response.status, describeDetail(error, fallback), error);
	}
	return data as T;
}

export const api = {
	health: () => unwrap<Health>(http.GET('/api/health')),

	listProjects: () => unwrap<Project[]>(http.GET('/api/projects')),
	getProject: (id: number) =>
		unwrap<Project>(http.GET('/api/projects/{project_id}', { params: { path: { project_id: id } } })),
	createProject: (body: ProjectCreate) => unwrap<Project>(http.POST('/api/projects', { body })),
	updateProject: (id: number, body: ProjectUpdate) =>
		unwrap<Project>(
			http.PATCH('/api/projects/{project_id}', { params: { path: { project_id: id } }, body })
		),
	deleteProject: (id: number, removeWorktrees = false) =>
		unwrap<unknown>(
			http.DELETE('/api/projects/{project_id}', {
				params: { path: { project_id: id }, query: { remove_worktrees: removeWorktrees } }
			})
		),
	projectDeletion: (id: number) =>
		unwrap<ProjectDeletion>(
			http.GET('/api/projects/{project_id}/deletion', { params: { path: { project_id: id } } })
		),
	suggestedKey: (name: string) =>
		unwrap<{ key: string }>(http.GET('/api/projects/suggested-key', { params: { query: { name } } })),
	getBoard: (projectId: number, q?: string) =>
		unwrap<Board>(
			http.GET('/api/projects/{project_id}/board', {
				params: { path: { project_id: projectId }, query: q ? { q } : {} }
			})
		),

	listTasks: (query: { project_id?: number; status?: TaskStatus; q?: string; limit?: number; cursor?: string }) =>
		unwrap<TaskPage>(http.GET('/api/tasks', { params: { query } })),
	getTask: (id: number) =>
		unwrap<Task>(http.GET('/api/tasks/{task_id}', { params: { path: { task_id: id } } })),
	createTask: (body: TaskCreate) => unwrap<Task>(http.POST('/api/tasks', { body })),
	updateTask: (id: number, body: TaskUpdate) =>
		unwrap<Task>(http.PATCH('/api/tasks/{task_id}', { params: { path: { task_id: id } }, body })),
	deleteTask: (id: number) =>
		unwrap<unknown>(http.DELETE('/api/tasks/{task_id}', { params: { path: { task_id: id } } })),
	moveTask: (id: number, body: TaskMove) =>
		unwrap<Task>(
			http.POST('/api/tasks/{task_id}/move', { params: { path: { task_id: id } }, body })
		),

	// ---- agent runs ----
	startRun: (taskId: number, instructions?: string) =>
		unwrap<Run>(
			http.POST('/api/tasks/{task_id}/runs', {
				params: { path: { task_id: taskId } },
				body: instructions ? { instructions } : {}
			})
		),
	listRuns: (taskId: number) =>
		unwrap<RunSummary[]>(http.GET('/api/tasks/{task_id}/runs', { params: { path: { task_id: taskId } } })),
	getRun: (runId: number) =>
		unwrap<Run>(http.GET('/api/runs/{run_id}', { params: { path: { run_id: runId } } })),
	runEvents: (runId: number, afterSeq = 0, limit = 1000) =>
		unwrap<RunEventPage>(
			http.GET('/api/runs/{run_id}/events', {
				params: { path: { run_id: runId }, query: { after_seq: afterSeq, limit } }
			})
		),
	cancelRun: (runId: number) =>
		unwrap<Run>(http.POST('/api/runs/{run_id}/cancel', { params: { path: { run_id: runId } } })),
	resumeRun: (runId: number) =>
		unwrap<Run>(http.POST('/api/runs/{run_id}/resume', { params: { path: { run_id: runId } } })),
	getDiff: (taskId: number) =>
		unwrap<Diff>(http.GET('/api/tasks/{task_id}/diff', { params: { path: { task_id: taskId } } })),
	approveTask: (taskId: number) =>
		unwrap<Task>(http.POST('/api/tasks/{task_id}/approve', { params: { path: { task_id: taskId } } })),
	requestChanges: (taskId: number, feedback: string) =>
		unwrap<Run>(
			http.POST('/api/tasks/{task_id}/request-changes', {
				params: { path: { task_id: taskId } },
				body: { feedback }
			})
		),
	agentsStatus: () => unwrap<AgentsStatus>(http.GET('/api/agents/status')),
	decideApproval: (approvalId: number, decision: ApprovalChoice, message?: string) =>
		unwrap<Approval>(
			http.POST('/api/approvals/{approval_id}', {
				params: { path: { approval_id: approvalId } },
				body: message ? { decision, message } : { decision }
			})
		),

	// ---- workflows ----
	listWorkflowTemplates: (projectId?: number) =>
		unwrap<TemplateCatalog>(
			http.GET('/api/workflow-templates', { params: { query: projectId ? { project_id: projectId } : {} } })
		),
	startWorkflow: (body: WorkflowCreate) => unwrap<Workflow>(http.POST('/api/workflows', { body })),
	listWorkflows: (projectId: number) =>
		unwrap<Workflow[]>(http.GET('/api/workflows', { params: { query: { project_id: projectId } } })),
	getWorkflow: (id: number) =>
		unwrap<Workflow>(http.GET('/api/workflows/{workflow_id}', { params: { path: { workflow_id: id } } })),
	cancelWorkflow: (id: number) =>
		unwrap<Workflow>(
			http.POST('/api/workflows/{workflow_id}/cancel', { params: { path: { workflow_id: id } } })
		)
};

export type Api = typeof api;

export type PluginSource = 'all' | 'glama' | 'official';
const pluginPath = (id: number) => ({ params: { path: { plugin_id: id } } });

/** The Plugin Manager's calls. */
export const pluginsApi = {
	list: () => unwrap<Plugin[]>(http.GET('/api/plugins')),
	search: (query: { q?: string; source?: PluginSource; cursor?: string; limit?: number }) =>
		unwrap<SearchResults>(http.GET('/api/plugins/search', { params: { query } })),
	install: (body: PluginInstall) => unwrap<Plugin>(http.POST('/api/plugins', { body })),
	update: (id: number, body: PluginUpdate) =>
		unwrap<Plugin>(http.PATCH('/api/plugins/{plugin_id}', { ...pluginPath(id), body })),
	setProject: (id: number, projectId: number, enabled: boolean) =>
		unwrap<Plugin>(
			http.PUT('/api/plugins/{plugin_id}/projects/{project_id}', {
				params: { path: { plugin_id: id, project_id: projectId } },
				body: { enabled }
			})
		),
	test: (id: number, timeout = 30) =>
		unwrap<PluginTest>(
			http.POST('/api/plugins/{plugin_id}/test', { params: { path: { plugin_id: id }, query: { timeout } } })
		),
	remove: (id: number) => unwrap<unknown>(http.DELETE('/api/plugins/{plugin_id}', pluginPath(id)))
};
export type PluginsApi = typeof pluginsApi;

const channelPath = (id: number) => ({ params: { path: { channel_id: id } } });

/** The Settings page's notification calls (channels, their test, the delivery log). */
export const notificationsApi = {
	listChannels: () => unwrap<NotificationChannel[]>(http.GET('/api/notifications/channels')),
	createChannel: (body: ChannelCreate) =>
		unwrap<NotificationChannel>(http.POST('/api/notifications/channels', { body })),
	updateChannel: (id: number, body: ChannelUpdate) =>
		unwrap<NotificationChannel>(http.PATCH('/api/notifications/channels/{channel_id}', { ...channelPath(id), body })),
	deleteChannel: (id: number) =>
		unwrap<unknown>(http.DELETE('/api/notifications/channels/{channel_id}', channelPath(id))),
	testChannel: (id: number) =>
		unwrap<Delivery>(http.POST('/api/notifications/channels/{channel_id}/test', channelPath(id))),
	listDeliveries: (query: { channel_id?: number; status?: DeliveryStatus; limit?: number } = {}) =>
		unwrap<Delivery[]>(http.GET('/api/notifications/deliveries', { params: { query } }))
};
export type NotificationsApi = typeof notificationsApi;

const collectionPath = (id: number) => ({ params: { path: { collection_id: id } } });
const documentPath = (id: number) => ({ params: { path: { document_id: id } } });

/** The Knowledge page's calls (collections, documents, search, project bindings). */
export const knowledgeApi = {
	status: () => unwrap<KnowledgeStatus>(http.GET('/api/knowledge/status')),
	listCollections: () => unwrap<Collection[]>(http.GET('/api/knowledge/collections')),
	createCollection: (body: CollectionCreate) =>
		unwrap<Collection>(http.POST('/api/knowledge/collections', { body })),
	updateCollection: (id: number, body: CollectionUpdate) =>
		unwrap<Collection>(http.PATCH('/api/knowledge/collections/{collection_id}', { ...collectionPath(id), body })),
	deleteCollection: (id: number) =>
		unwrap<unknown>(http.DELETE('/api/knowledge/collections/{collection_id}', collectionPath(id))),
	listDocuments: (id: number, query: { kind?: DocumentKind; status?: DocumentStatus } = {}) =>
		unwrap<DocumentSummary[]>(
			http.GET('/api/knowledge/collections/{collection_id}/documents', {
				params: { path: { collection_id: id }, query }
			})
		),
	addNote: (id: number, body: NoteCreate) =>
		unwrap<KnowledgeDocument>(http.POST('/api/knowledge/collections/{collection_id}/notes', { ...collectionPath(id), body })),
	addUrl: (id: number, body: UrlCreate) =>
		unwrap<DocumentSummary>(http.POST('/api/knowledge/collections/{collection_id}/urls', { ...collectionPath(id), body })),
	uploadFile: (id: number, file: File, title?: string) => {
		const form = new FormData();
		form.append('file', file);
		if (title) form.append('title', title);
		return unwrap<DocumentSummary>(
			http.POST('/api/knowledge/collections/{collection_id}/files', {
				...collectionPath(id),
				// The typed body describes the multipart fields; the browser sends the FormData as is.
				body: form as unknown as { file: string; title?: string | null },
				bodySerializer: (body: unknown) => body as FormData
			})
		);
	},
	getDocument: (id: number) => unwrap<KnowledgeDocument>(http.GET('/api/knowledge/documents/{document_id}', documentPath(id))),
	deleteDocument: (id: number) => unwrap<unknown>(http.DELETE('/api/knowledge/documents/{document_id}', documentPath(id))),
	reingest: (id: number) =>
		unwrap<DocumentSummary>(http.POST('/api/knowledge/documents/{document_id}/reingest', documentPath(id))),
	search: (query: KnowledgeSearchQuery) => unwrap<KnowledgeSearch>(http.GET('/api/knowledge/search', { params: { query } })),
	projectBindings: (projectId: number) =>
		unwrap<KnowledgeBinding[]>(
			http.GET('/api/projects/{project_id}/knowledge', { params: { path: { project_id: projectId } } })
		),
	bind: (projectId: number, collectionId: number, canWrite: boolean) =>
		unwrap<KnowledgeBinding>(
			http.PUT('/api/projects/{project_id}/knowledge/{collection_id}', {
				params: { path: { project_id: projectId, collection_id: collectionId } },
				body: { can_write: canWrite }
			})
		),
	unbind: (projectId: number, collectionId: number) =>
		unwrap<unknown>(
			http.DELETE('/api/projects/{project_id}/knowledge/{collection_id}', {
				params: { path: { project_id: projectId, collection_id: collectionId } }
			})
		),
	saveRun: (runId: number, body: RunKnowledgeSave = {}) =>
		unwrap<KnowledgeDocument>(http.POST('/api/runs/{run_id}/knowledge', { params: { path: { run_id: runId } }, body }))
};
export type KnowledgeApi = typeof knowledgeApi;

/**
 * URL of the live event stream: one board's, or with `projectId` null every project's and the
 * plugins' (token in the query: EventSource cannot send headers).
 */
export function eventsUrl(projectId: number | null, lastEventId?: number | null): string {
	const params = new URLSearchParams();
	if (projectId != null) params.set('project_id', String(projectId));
	if (lastEventId != null) params.set('last_event_id', String(lastEventId));
	if (auth.token) params.set('token', auth.token);
	const query = params.toString();
	return `/api/events${query ? `?${query}` : ''}`;
}

/** URL of a run's live event stream; `after` resumes after that sequence number. */
export function runStreamUrl(runId: number, after?: number | null): string {
	const params = new URLSearchParams();
	if (after) params.set('last_event_id', String(after));
	if (auth.token) params.set('token', auth.token);
	const query = params.toString();
	return `/api/runs/${runId}/stream${query ? `?${query}` : ''}`;
}
