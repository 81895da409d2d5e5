import { vi } from 'vitest';
import type { Api } from '$lib/api/client';
import type {
	Board,
	BoardEvent,
	Project,
	ProjectDeletedPayload,
	RunSummary,
	Task,
	TaskDeletedPayload,
	TaskStatus,
	Workflow,
	WorkflowStep
} from '$lib/api/types';

export const project: Project = {
	id: 1,
	name: 'Demo',
	key: 'KAN',
	workspace_path: '/tmp/demo',
	base_branch: 'main',
	permission_mode: 'acceptEdits',
	allowed_tools: [],
	copy_files: [],
	agent_model: null,
	max_turns: null,
	max_budget_usd: null,
	save_task_results: true,
	created_at: '2026-01-01T00:00:00Z',
	updated_at: '2026-01-01T00:00:00Z'
};

export function makeTask(id: number, status: TaskStatus, position: string, extra: Partial<Task> = {}): Task {
	return {
		id,
		short_id: `KAN-${id}`,
		number: id,
		project_id: 1,
		title: `Task ${id}`,
		description: '',
		status,
		position,
		priority: 'none',
		labels: [],
		parent_id: null,
		created_by_run_id: null,
		result: null,
		version: 1,
		start_when_unblocked: false,
		blocked: false,
		blocked_by: [],
		created_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		...extra
	};
}

export function makeBoard(tasks: Task[]): Board {
	const statuses: TaskStatus[] = ['todo', 'in_progress', 'needs_review', 'done'];
	return {
		project,
		columns: statuses.map((status) => ({
			status,
			title: status,
			tasks: tasks
				.filter((t) => t.status === status)
				.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0))
				.map(({ description: _d, result: _r, ...rest }) => rest)
		}))
	} as Board;
}

export function makeRun(id: number, taskId: number, status: RunSummary['status'], extra: Partial<RunSummary> = {}): RunSummary {
	return {
		id,
		task_id: taskId,
		project_id: 1,
		attempt: 1,
		kind: 'agent',
		reason: 'start',
		status,
		session_id: null,
		branch: null,
		base_commit: null,
		head_commit: null,
		error: null,
		check_passed: null,
		cost_usd: null,
		task_cost_usd: null,
		input_tokens: null,
		output_tokens: null,
		turns: null,
		duration_ms: null,
		created_at: '2026-01-01T00:00:00Z',
		started_at: null,
		finished_at: null,
		starts: 1,
		owner: null,
		host: null,
		lease_expires_at: null,
		waiting_for: null,
		...extra
	};
}

export function makeStep(stepId: string, taskId: number | null, extra: Partial<WorkflowStep> = {}): WorkflowStep {
	return {
		step_id: stepId,
		title: `Step ${stepId}`,
		kind: 'agent',
		needs: [],
		review: 'human',
		task_id: taskId,
		short_id: taskId == null ? null : `KAN-${taskId}`,
		status: 'todo',
		run_status: null,
		runs: 0,
		max_attempts: null,
		blocked: false,
		reason: null,
		...extra
	};
}

/** The built-in `feature` workflow as just started: card 1, steps plan (2), approve-plan (3), implement (4). */
export function makeWorkflow(id: number, extra: Partial<Workflow> = {}): Workflow {
	return {
		id,
		project_id: 1,
		parent_task_id: 1,
		template_name: 'feature',
		title: 'Build a feature: dark mode',
		origin: 'builtin',
		source: 'builtin:feature.yaml',
		status: 'running',
		phase: 'running',
		inputs: { feature: 'dark mode', test_command: 'make test' },
		progress: { done: 0, total: 3, current: [] },
		steps: [
			makeStep('plan', 2, { title: 'Plan: dark mode', review: 'auto' }),
			makeStep('approve-plan', 3, { title: 'Approve the plan: dark mode', kind: 'approval', needs: ['plan'], review: null, blocked: true }),
			makeStep('implement', 4, { title: 'Implement: dark mode', needs: ['approve-plan'], blocked: true, max_attempts: 3 })
		],
		result: null,
		created_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		finished_at: null,
		...extra
	};
}

let eventId = 0;
type PayloadOf<T extends BoardEvent['type']> = T extends 'task.deleted'
	? TaskDeletedPayload
	: T extends 'project.deleted'
		? ProjectDeletedPayload
		: T extends 'project.created' | 'project.updated'
			? Project
			: T extends `run.${string}`
				? RunSummary
				: Task;

export function event<T extends BoardEvent['type']>(type: T, payload: PayloadOf<T>): BoardEvent {
	return {
		id: ++eventId,
		type,
		project_id: 1,
		created_at: '2026-01-01T00:00:00Z',
		payload
	} as BoardEvent;
}

export function fakeApi(overrides: Partial<Record<keyof Api, unknown>> = {}): Api & Record<keyof Api, ReturnType<typeof vi.fn>> {
	const api = {
		health: vi.fn(),
		listProjects: vi.fn(async () => [project]),
		getProject: vi.fn(async () => project),
		createProject: vi.fn(),
		updateProject: vi.fn(),
		deleteProject: vi.fn(),
		getBoard: vi.fn(),
		listTasks: vi.fn(),
		getTask: vi.fn(),
		createTask: vi.fn(),
		updateTask: vi.fn(),
		deleteTask: vi.fn(async () => null),
		moveTask: vi.fn(),
		agentsStatus: vi.fn(async () => ({ can_run: true, problem: null })),
		startRun: vi.fn(),
		...overrides
	};
	return api as never;
}

/** Ids per column, for compact assertions. */
export function ids(columns: Record<TaskStatus, { id: number }[]>) {
	return {
		todo: columns.todo.map((t) => t.id),
		in_progress: columns.in_progress.map((t) => t.id),
		needs_review: columns.needs_review.map((t) => t.id),
		done: columns.done.map((t) => t.id)
	};
}
