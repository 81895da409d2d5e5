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
export type Task = Ok<paths['/api/tasks/{task_id}']['get']>;
export type TaskCreate = Body<paths['/api/tasks']['post']>;
export type TaskUpdate = Body<paths['/api/tasks/{task_id}']['patch']>;
export type TaskMove = Body<paths['/api/tasks/{task_id}/move']['post']>;
export type TaskPage = Ok<paths['/api/tasks']['get']>;
export type Board = Ok<paths['/api/projects/{project_id}/board']['get']>;
export type BoardColumn = Board['columns'][number];
export type BoardTask = BoardColumn['tasks'][number];
/** An agent run as shown on a card. */
export type RunSummary = NonNullable<BoardTask['run']>;
export type RunStatus = RunSummary['status'];

export const STATUSES = ['todo', 'in_progress', 'needs_review', 'done'] as const;
export type TaskStatus = (typeof STATUSES)[number];

export const PRIORITIES = ['none', 'low', 'medium', 'high', 'urgent'] as const;
export type TaskPriority = (typeof PRIORITIES)[number];

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

/** Named server-sent events on /api/events. */
export const EVENT_TYPES = [
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
	'run.finished'
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type TaskDeletedPayload = { id: number; short_id: string; project_id: number };
export type ProjectDeletedPayload = { id: number };

type Envelope<T extends EventType, P> = {
	id: number;
	type: T;
	project_id: number | null;
	created_at: string;
	payload: P;
};

export type BoardEvent =
	| Envelope<'task.created' | 'task.updated' | 'task.moved', Task>
	| Envelope<'task.deleted', TaskDeletedPayload>
	| Envelope<'project.created' | 'project.updated', Project>
	| Envelope<'project.deleted', ProjectDeletedPayload>
	| Envelope<'run.queued' | 'run.started' | 'run.updated' | 'run.finished', RunSummary>;
