/**
 * Friendly names for the API's shapes. They are derived from the operations in the generated
 * `schema.d.ts` rather than from component names, so a rename on the backend's Pydantic side
 * does not ripple through the app.
 */
import type { paths } from './schema';

type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never;
type Ok<Op> = Op extends { responses: infer R }
	? R extends { 200: infer A }
		? Json<A>
		: R extends { 201: infer B }
			? Json<B>
			: never
	: never;
type Body<Op> = Op extends { requestBody?: infer B } ? Json<NonNullable<B>> : never;

export type Health = Ok<paths['/api/health']['get']>;
export type Project = Ok<paths['/api/projects/{project_id}']['get']>;
export type ProjectCreate = Body<paths['/api/projects']['post']>;
export type ProjectUpdate = Body<paths['/api/projects/{project_id}']['patch']>;
/** What deleting a project removes (its tasks, runs, workflows; its worktrees when asked). */
export type ProjectDeletion = Ok<paths['/api/projects/{project_id}/deletion']['get']>;
export type Task = Ok<paths['/api/tasks/{task_id}']['get']>;
export type TaskCreate = Body<paths['/api/tasks']['post']>;
export type TaskUpdate = Body<paths['/api/tasks/{task_id}']['patch']>;
export type TaskMove = Body<paths['/api/tasks/{task_id}/move']['post']>;
export type TaskPage = Ok<paths['/api/tasks']['get']>;
export type Board = Ok<paths['/api/projects/{project_id}/board']['get']>;
export type BoardColumn = Board['columns'][number];
export type BoardTask = BoardColumn['tasks'][number];
/** A task another one waits for, with whether (and why) it still blocks. */
export type Blocker = BoardTask['blocked_by'][number];
/** An agent run as shown on a card. */
export type RunSummary = NonNullable<BoardTask['run']>;
export type RunStatus = RunSummary['status'];
/** A run with its prompt, result and pending approvals. */
export type Run = Ok<paths['/api/runs/{run_id}']['get']>;
export type Approval = Run extends { pending_approvals?: (infer A)[] } ? A : never;
export type ApprovalChoice = Body<paths['/api/approvals/{approval_id}']['post']>['decision'];
/** `GET /api/agents/status`: whether agents can run here, and the login command when they cannot. */
export type AgentsStatus = Ok<paths['/api/agents/status']['get']>;
export type RunEventPage = Ok<paths['/api/runs/{run_id}/events']['get']>;
/** One stored event of a run; its `type` says what its payload holds (docs/api.md). */
export type RunEvent = RunEventPage['items'][number];
export type RunEventType = RunEvent['type'];

export type Plugin = Ok<paths['/api/plugins/{plugin_id}']['get']>;
export type PluginInstall = Body<paths['/api/plugins']['post']>;
export type PluginUpdate = Body<paths['/api/plugins/{plugin_id}']['patch']>;
export type PluginTest = Ok<paths['/api/plugins/{plugin_id}/test']['post']>;
export type SearchResults = Ok<paths['/api/plugins/search']['get']>;
export type SearchItem = SearchResults['items'][number];
export type InstallOption = NonNullable<SearchItem['install_options']>[number];
export type StoredSetting = Plugin['settings'][number];

export type Collection = Ok<paths['/api/knowledge/collections/{collection_id}']['get']>;
export type CollectionCreate = Body<paths['/api/knowledge/collections']['post']>;
export type CollectionUpdate = Body<paths['/api/knowledge/collections/{collection_id}']['patch']>;
export type BoundProject = NonNullable<Collection['projects']>[number];
export type DocumentSummary = Ok<paths['/api/knowledge/collections/{collection_id}/documents']['get']>[number];
export type KnowledgeDocument = Ok<paths['/api/knowledge/documents/{document_id}']['get']>;
export type DocumentKind = DocumentSummary['kind'];
export type DocumentStatus = DocumentSummary['status'];
export type NoteCreate = Body<paths['/api/knowledge/collections/{collection_id}/notes']['post']>;
export type UrlCreate = Body<paths['/api/knowledge/collections/{collection_id}/urls']['post']>;
export type KnowledgeSearch = Ok<paths['/api/knowledge/search']['get']>;
export type KnowledgeSearchQuery = NonNullable<paths['/api/knowledge/search']['get']['parameters']['query']>;
export type KnowledgeHit = KnowledgeSearch['hits'][number];
export type KnowledgeBinding = Ok<paths['/api/projects/{project_id}/knowledge/{collection_id}']['put']>;
export type KnowledgeStatus = Ok<paths['/api/knowledge/status']['get']>;
export type RunKnowledgeSave = Body<paths['/api/runs/{run_id}/knowledge']['post']>;

/** `GET /api/workflow-templates`: the templates a project can start, and the files that could not be read. */
export type TemplateCatalog = Ok<paths['/api/workflow-templates']['get']>;
export type WorkflowTemplate = TemplateCatalog['templates'][number];
export type TemplateInput = WorkflowTemplate['inputs'][number];
export type TemplateStep = WorkflowTemplate['steps'][number];
export type TemplateProblem = TemplateCatalog['problems'][number];
export type WorkflowCreate = Body<paths['/api/workflows']['post']>;
export type Workflow = Ok<paths['/api/workflows/{workflow_id}']['get']>;
export type WorkflowStep = Workflow['steps'][number];
export type WorkflowPhase = Workflow['phase'];
export type StepKind = WorkflowStep['kind'];
export type RunKind = RunSummary['kind'];


/** Runs that are not over yet. */
export const ACTIVE_RUN_STATUSES: readonly RunStatus[] = ['queued', 'running', 'waiting_approval'];
export const isActiveRun = (run: Pick<RunSummary, 'status'> | null | undefined): boolean =>
	!!run && ACTIVE_RUN_STATUSES.includes(run.status);

/** `GET /api/tasks/{id}/diff`: what the agent changed, base…head of the task branch. */
export type Diff = Ok<paths['/api/tasks/{task_id}/diff']['get']>;
export type DiffFile = Diff['files'][number];
export type DiffHunk = DiffFile['hunks'][number];
/** One line of a diff hunk; `old`/`new` are line numbers (null on the side that lacks the line). */
export type DiffLine = DiffHunk['lines'][number];

/**
 * `values`, checked by the compiler to hold every member of the schema's union `U` and nothing
 * else: when the backend adds, renames or drops one, the list here fails to compile.
 */
export const everyMember =
	<U extends string>() =>
	<const T extends readonly U[]>(
		values: T & ([Exclude<U, T[number]>] extends [never] ? unknown : { missing: Exclude<U, T[number]> })
	): T =>
		values;

export const STEP_KINDS = everyMember<StepKind>()(['agent', 'check', 'approval']);

export const DOCUMENT_KINDS = everyMember<DocumentKind>()(['note', 'file', 'url', 'task_result']);

export const DOCUMENT_STATUSES = everyMember<DocumentStatus>()([
	'pending',
	'fetching',
	'chunking',
	'embedding',
	'ready',
	'failed'
]);

export type TaskStatus = Task['status'];
/** The board's columns, in order. */
export const STATUSES = everyMember<TaskStatus>()(['todo', 'in_progress', 'needs_review', 'done']);

export type TaskPriority = Task['priority'];
export const PRIORITIES = everyMember<TaskPriority>()(['none', 'low', 'medium', 'high', 'urgent']);

export const STATUS_TITLES: Record<TaskStatus, string> = {
	todo: 'To Do',
	in_progress: 'Running',
	needs_review: 'Review',
	done: 'Done'
};

export const PRIORITY_TITLES: Record<TaskPriority, string> = {
	none: 'No priority',
	low: 'Low',
	medium: 'Medium',
	high: 'High',
	urgent: 'Urgent'
};

type StreamOf<Op> = Op extends { responses: { 200: { content: { 'text/event-stream': infer T } } } } ? T : never;

/** One message of the live stream `GET /api/events` (its `data:`), told apart by `type`. */
export type BoardEvent = StreamOf<paths['/api/events']['get']>;
/** One message of a run's live stream `GET /api/runs/{id}/stream` (its `data:`; the final `end` aside). */
export type RunStreamEvent = StreamOf<paths['/api/runs/{run_id}/stream']['get']>;
export type EventType = BoardEvent['type'];
/** The board event with type `T`. */
export type EventOf<T extends EventType> = Extract<BoardEvent, { type: T }>;
export type TaskDeletedPayload = EventOf<'task.deleted'>['payload'];
export type ProjectDeletedPayload = EventOf<'project.deleted'>['payload'];
type TypeAndPayload<E> = E extends BoardEvent ? Pick<E, 'type' | 'payload'> : never;
/** A plugin event's type and payload (what the Plugin Manager applies). */
export type PluginEvent = TypeAndPayload<EventOf<'plugin.installed' | 'plugin.updated' | 'plugin.removed'>>;
/** A knowledge event's type and payload (what the Knowledge page applies). */
export type KnowledgeEvent = TypeAndPayload<EventOf<Extract<EventType, `knowledge.${string}`>>>;

/** Named server-sent events on /api/events. */
export const EVENT_TYPES = everyMember<EventType>()([
	'task.created',
	'task.updated',
	'task.moved',
	'task.deleted',
	'project.created',
	'project.updated',
	'project.deleted',
	'run.queued',
	'run.started',
	'run.updated',
	'run.finished',
	'approval.requested',
	'approval.resolved',
	'plugin.installed',
	'plugin.updated',
	'plugin.removed',
	'knowledge.collection_created',
	'knowledge.collection_updated',
	'knowledge.collection_deleted',
	'knowledge.document_updated',
	'knowledge.document_deleted'
]);
export const PLUGIN_EVENT_TYPES = everyMember<PluginEvent['type']>()(['plugin.installed', 'plugin.updated', 'plugin.removed']);

export const KNOWLEDGE_EVENT_TYPES = everyMember<KnowledgeEvent['type']>()([
	'knowledge.collection_created',
	'knowledge.collection_updated',
	'knowledge.collection_deleted',
	'knowledge.document_updated',
	'knowledge.document_deleted'
]);

/** Named events of `GET /api/runs/{id}/stream` (plus `end`, sent once the run is over). */
export const RUN_EVENT_TYPES = everyMember<RunEventType>()([
	'init',
	'text',
	'thinking',
	'tool_use',
	'tool_result',
	'user',
	'approval',
	'result',
	'error',
	'status',
	'system',
	'check'
]);

export type NotificationChannel = Ok<paths['/api/notifications/channels']['get']>[number];
export type ChannelCreate = Body<paths['/api/notifications/channels']['post']>;
export type ChannelUpdate = Body<paths['/api/notifications/channels/{channel_id}']['patch']>;
/** What a channel can be told about (approval_requested, run_succeeded, run_failed, workflow_done). */
export type NotificationKind = NotificationChannel['events'][number];
/** One notification of the delivery log (a board event's or a channel test's). */
export type Delivery = Ok<paths['/api/notifications/deliveries']['get']>[number];
export type DeliveryStatus = Delivery['status'];
