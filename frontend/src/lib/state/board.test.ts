import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '$lib/api/client';
import type { BoardTask, RunSummary, Task } from '$lib/api/types';
import { BoardState, compareTasks, matchesQuery } from './board.svelte';
import { event, fakeApi, ids, makeBoard, makeTask } from '$lib/test/fixtures';

async function loaded(tasks: Task[], overrides = {}) {
	const api = fakeApi({ getBoard: vi.fn(async () => makeBoard(tasks)), ...overrides });
	const notify = vi.fn();
	const board = new BoardState({ api, notify });
	await board.load(1);
	return { board, api, notify };
}

function deferred<T>() {
	let resolve!: (value: T) => void;
	let reject!: (reason: unknown) => void;
	const promise = new Promise<T>((res, rej) => {
		resolve = res;
		reject = rej;
	});
	return { promise, resolve, reject };
}

const A = makeTask(1, 'todo', 'a0');
const B = makeTask(2, 'todo', 'a1');
const C = makeTask(3, 'todo', 'a2');
const D = makeTask(4, 'done', 'a0');

describe('ordering and matching', () => {
	it('orders by position as plain strings, then by id', () => {
		const tasks = [
			{ id: 3, position: 'a1' },
			{ id: 1, position: 'Zz' },
			{ id: 2, position: 'a1' },
			{ id: 4, position: 'a0V' }
		];
		expect([...tasks].sort(compareTasks).map((t) => t.id)).toEqual([1, 4, 2, 3]);
	});

	it('matches the query on title, description and short id', () => {
		const task = makeTask(7, 'todo', 'a0', { title: 'Fix login', description: 'OAuth redirect loop' });
		expect(matchesQuery(task, 'LOGIN')).toBe(true);
		expect(matchesQuery(task, 'redirect')).toBe(true);
		expect(matchesQuery(task, 'kan-7')).toBe(true);
		expect(matchesQuery(task, 'billing')).toBe(false);
		expect(matchesQuery(task, '  ')).toBe(true);
	});

	it('matches a label, as the server does', () => {
		const task = makeTask(8, 'todo', 'a0', { title: 'Plain', labels: ['frontend', 'Café'] });
		expect(matchesQuery(task, 'FRONT')).toBe(true);
		expect(matchesQuery(task, 'café')).toBe(true);
		expect(matchesQuery(task, 'backend')).toBe(false);
	});
});

describe('loading', () => {
	it('fills the columns in server order and strips description/result', async () => {
		const { board, api } = await loaded([A, B, C, D]);
		expect(api.getBoard).toHaveBeenCalledWith(1, undefined);
		expect(ids(board.columns)).toEqual({ todo: [1, 2, 3], in_progress: [], needs_review: [], done: [4] });
		expect(board.columns.todo[0]).not.toHaveProperty('description');
		expect(board.total).toBe(4);
		expect(board.loaded).toBe(true);
	});

	it('passes the search to the server', async () => {
		const { board, api } = await loaded([A]);
		await board.load(1, 'login');
		expect(api.getBoard).toHaveBeenLastCalledWith(1, 'login');
		expect(board.query).toBe('login');
	});

	it('queues events that arrive while loading and applies them afterwards', async () => {
		const pending = deferred<ReturnType<typeof makeBoard>>();
		const api = fakeApi({ getBoard: vi.fn(() => pending.promise) });
		const board = new BoardState({ api, notify: vi.fn() });
		const loading = board.load(1);
		board.applyEvent(event('task.created', makeTask(9, 'todo', 'a5')));
		// an event older than the snapshot: must not win
		board.applyEvent(event('task.updated', { ...A, title: 'old', version: 1 }));
		pending.resolve(makeBoard([{ ...A, title: 'current', version: 2 }]));
		await loading;
		expect(ids(board.columns).todo).toEqual([1, 9]);
		expect(board.columns.todo[0].title).toBe('current');
	});

	it('keeps the error when the board cannot be loaded', async () => {
		const api = fakeApi({
			getBoard: vi.fn(async () => {
				throw new ApiError(404, 'Project 1 not found', { detail: 'Project 1 not found' });
			})
		});
		const board = new BoardState({ api, notify: vi.fn() });
		await board.load(1);
		expect(board.error).toBe('Project 1 not found');
		expect(board.loaded).toBe(false);
	});
});

describe('applying live events', () => {
	it('inserts a created task at its position', async () => {
		const { board } = await loaded([A, C]);
		board.applyEvent(event('task.created', B));
		expect(ids(board.columns).todo).toEqual([1, 2, 3]);
	});

	it('is idempotent: the same event twice changes nothing', async () => {
		const { board } = await loaded([A]);
		const created = event('task.created', B);
		board.applyEvent(created);
		board.applyEvent(created);
		expect(ids(board.columns).todo).toEqual([1, 2]);
	});

	it('ignores an event for a version older than or equal to the one held', async () => {
		const { board } = await loaded([{ ...A, version: 3, title: 'v3' }]);
		board.applyEvent(event('task.updated', { ...A, version: 2, title: 'v2' }));
		board.applyEvent(event('task.moved', { ...A, version: 3, status: 'done', title: 'v3 again' }));
		expect(board.columns.todo[0].title).toBe('v3');
		expect(ids(board.columns).done).toEqual([]);
	});

	it('moves a task between columns on task.moved', async () => {
		const { board } = await loaded([A, B, C, D]);
		board.applyEvent(event('task.moved', { ...B, status: 'done', position: 'a1', version: 2 }));
		expect(ids(board.columns)).toEqual({ todo: [1, 3], in_progress: [], needs_review: [], done: [4, 2] });
		board.applyEvent(event('task.moved', { ...C, status: 'todo', position: 'Zz', version: 2 }));
		expect(ids(board.columns).todo).toEqual([3, 1]);
	});

	it('removes deleted tasks and ignores later events about them', async () => {
		const { board } = await loaded([A, B]);
		board.applyEvent(event('task.deleted', { id: 2, short_id: 'KAN-2', project_id: 1 }));
		board.applyEvent(event('task.updated', { ...B, version: 5 }));
		expect(ids(board.columns).todo).toEqual([1]);
	});

	it("ignores other projects' tasks", async () => {
		const { board } = await loaded([A]);
		board.applyEvent(event('task.created', makeTask(50, 'todo', 'a3', { project_id: 2 })));
		expect(board.total).toBe(1);
	});

	it('updates the project on project.updated', async () => {
		const { board } = await loaded([A]);
		board.applyEvent(event('project.updated', { ...board.project!, name: 'Renamed' }));
		expect(board.project?.name).toBe('Renamed');
	});

	it('keeps a search applied to live events', async () => {
		const api = fakeApi({ getBoard: vi.fn(async () => makeBoard([{ ...A, title: 'login page' }])) });
		const board = new BoardState({ api, notify: vi.fn() });
		await board.load(1, 'login');
		board.applyEvent(event('task.created', makeTask(5, 'todo', 'a5', { title: 'billing' })));
		board.applyEvent(event('task.created', makeTask(6, 'todo', 'a6', { title: 'x', description: 'the LOGIN form' })));
		expect(ids(board.columns).todo).toEqual([1, 6]);
		board.applyEvent(event('task.updated', { ...A, title: 'signup page', version: 2 }));
		expect(ids(board.columns).todo).toEqual([6]);
	});

	it("shows a task's newest run and keeps it across task updates", async () => {
		const { board } = await loaded([A, B]);
		const run = (id: number, status: RunSummary['status'], extra: Partial<RunSummary> = {}): RunSummary =>
			({ id, task_id: 1, project_id: 1, status, attempt: 1, error: null, ...extra }) as RunSummary;
		board.applyEvent(event('run.queued', run(5, 'queued')));
		expect(board.find(1)?.task.run?.status).toBe('queued');
		board.applyEvent(event('run.started', run(5, 'running')));
		board.applyEvent(event('task.moved', { ...A, status: 'in_progress', version: 2 }));
		expect(board.find(1)).toMatchObject({ status: 'in_progress', task: { run: { id: 5, status: 'running' } } });
		board.applyEvent(event('run.finished', run(4, 'failed')));
		expect(board.find(1)?.task.run?.id).toBe(5);
		board.applyEvent(event('run.finished', run(6, 'succeeded', { project_id: 2 })));
		expect(board.find(1)?.task.run?.id).toBe(5);
		expect(board.find(2)?.task.run).toBeUndefined();
	});

	it('updates the task open in the sidebar', async () => {
		const { board, api } = await loaded([A], {});
		api.getTask.mockResolvedValue({ ...A, description: 'hello' });
		await board.openTask(1);
		expect(board.detail?.description).toBe('hello');
		board.applyEvent(event('task.updated', { ...A, description: 'changed elsewhere', version: 2 }));
		expect(board.detail?.description).toBe('changed elsewhere');
		board.applyEvent(event('task.deleted', { id: 1, short_id: 'KAN-1', project_id: 1 }));
		expect(board.detailId).toBeNull();
	});
});

describe('moving tasks', () => {
	it('moves optimistically and sends the neighbour as anchor with the version', async () => {
		const pending = deferred<Task>();
		const { board, api } = await loaded([A, B, C, D], { moveTask: vi.fn(() => pending.promise) });
		const done = board.move(1, 'done', 1);
		// shown before the server answers
		expect(ids(board.columns)).toEqual({ todo: [2, 3], in_progress: [], needs_review: [], done: [4, 1] });
		await Promise.resolve();
		expect(api.moveTask).toHaveBeenCalledWith(1, { status: 'done', after_id: 4, version: 1 });
		pending.resolve({ ...A, status: 'done', position: 'a1', version: 2 });
		expect(await done).toBe(true);
		expect(board.find(1)).toMatchObject({ status: 'done', index: 1, task: { version: 2, position: 'a1' } });
	});

	it('uses before_id when the task lands first in a column', async () => {
		const { board, api } = await loaded([A, B, C], {
			moveTask: vi.fn(async () => ({ ...C, position: 'Zz', version: 2 }))
		});
		await board.move(3, 'todo', 0);
		expect(api.moveTask).toHaveBeenCalledWith(3, { status: 'todo', before_id: 1, version: 1 });
		expect(ids(board.columns).todo).toEqual([3, 1, 2]);
	});

	it('sends no anchor when the column is empty', async () => {
		const { board, api } = await loaded([A], {
			moveTask: vi.fn(async () => ({ ...A, status: 'needs_review', version: 2 }))
		});
		await board.move(1, 'needs_review');
		expect(api.moveTask).toHaveBeenCalledWith(1, { status: 'needs_review', version: 1 });
	});

	it('rolls back a refused move (409) and says why, then takes the current task', async () => {
		const current = { ...A, title: 'Renamed elsewhere', version: 2 };
		const { board, notify } = await loaded([A, B, C, D], {
			moveTask: vi.fn(async () => {
				throw new ApiError(409, 'Task KAN-1 was changed by someone else', {
					detail: 'Task KAN-1 was changed by someone else',
					current
				});
			})
		});
		expect(await board.move(1, 'done', 0)).toBe(false);
		expect(ids(board.columns)).toEqual({ todo: [1, 2, 3], in_progress: [], needs_review: [], done: [4] });
		expect(notify).toHaveBeenCalledWith("Couldn't move KAN-1: Task KAN-1 was changed by someone else");
		expect(board.columns.todo[0].title).toBe('Renamed elsewhere');
		expect(board.columns.todo[0].version).toBe(2);
	});

	it('rolls back a 422 as well', async () => {
		const { board, notify } = await loaded([A, B], {
			moveTask: vi.fn(async () => {
				throw new ApiError(422, 'after_id: task 99 is not in column done', {});
			})
		});
		await board.move(2, 'done');
		expect(ids(board.columns).todo).toEqual([1, 2]);
		expect(notify.mock.calls[0][0]).toContain('after_id: task 99 is not in column done');
	});

	it('does not roll back over a newer version that arrived meanwhile', async () => {
		const pending = deferred<Task>();
		const { board } = await loaded([A, B], { moveTask: vi.fn(() => pending.promise) });
		const moving = board.move(1, 'done');
		await Promise.resolve();
		board.applyEvent(event('task.moved', { ...A, status: 'needs_review', position: 'a0', version: 2 }));
		pending.reject(new ApiError(409, 'stale', { detail: 'stale' }));
		await moving;
		expect(ids(board.columns)).toEqual({ todo: [2], in_progress: [], needs_review: [1], done: [] });
	});

	it('sends consecutive moves of one card one after the other, with the newer version', async () => {
		const first = deferred<Task>();
		const moveTask = vi
			.fn()
			.mockImplementationOnce(() => first.promise)
			.mockImplementationOnce(async () => ({ ...A, status: 'needs_review', position: 'a0', version: 3 }));
		const { board } = await loaded([A, B], { moveTask });
		const one = board.move(1, 'in_progress');
		const two = board.move(1, 'needs_review');
		await Promise.resolve();
		expect(moveTask).toHaveBeenCalledTimes(1);
		// the first answer must not pull the card back from where the second move put it
		first.resolve({ ...A, status: 'in_progress', position: 'a0', version: 2 });
		await one;
		expect(board.find(1)?.status).toBe('needs_review');
		await two;
		expect(moveTask).toHaveBeenNthCalledWith(2, 1, { status: 'needs_review', version: 2 });
		expect(board.find(1)).toMatchObject({ status: 'needs_review', task: { version: 3 } });
	});
});

describe('drag and drop', () => {
	const strip = (t: Task): BoardTask => {
		const { description: _d, result: _r, ...rest } = t;
		return rest;
	};

	it('persists a drop into another column from the target zone only', async () => {
		const { board, api } = await loaded([A, B, D], {
			moveTask: vi.fn(async () => ({ ...A, status: 'done', position: 'a1', version: 2 }))
		});
		// drag starts in To Do: the library removes the card from the source list
		board.dragConsider('todo', [strip(B)], 1);
		expect(board.dragging).toBe(true);
		// live events wait while dragging
		board.applyEvent(event('task.created', makeTask(8, 'todo', 'a9')));
		expect(ids(board.columns).todo).toEqual([2]);
		board.dragConsider('done', [strip(D), strip(A)], 1);
		await board.dragFinalize('todo', [strip(B)], 1);
		expect(api.moveTask).not.toHaveBeenCalled();
		await board.dragFinalize('done', [strip(D), strip(A)], 1);
		expect(api.moveTask).toHaveBeenCalledWith(1, { status: 'done', after_id: 4, version: 1 });
		expect(board.dragging).toBe(false);
		expect(ids(board.columns)).toEqual({ todo: [2, 8], in_progress: [], needs_review: [], done: [4, 1] });
		expect(board.find(1)?.task.status).toBe('done');
	});

	it('does nothing when the card is dropped where it was', async () => {
		const { board, api } = await loaded([A, B]);
		board.dragConsider('todo', [strip(A), strip(B)], 1);
		await board.dragFinalize('todo', [strip(A), strip(B)], 1);
		expect(api.moveTask).not.toHaveBeenCalled();
		expect(board.dragging).toBe(false);
	});

	it('ends a keyboard drag that took no step without sending anything', async () => {
		const { board, api } = await loaded([A, B]);
		board.keyboardDragging = true;
		board.dragConsider('todo', [strip(A), strip(B)], 1);
		board.applyEvent(event('task.created', makeTask(8, 'todo', 'a9')));
		board.dragStopped('todo', [strip(A), strip(B)]);
		expect(board.dragging).toBe(false);
		expect(board.keyboardDragging).toBe(false);
		expect(api.moveTask).not.toHaveBeenCalled();
		expect(ids(board.columns).todo).toEqual([1, 2, 8]);
	});

	it('persists each keyboard step (finalize without a new consider)', async () => {
		const moveTask = vi
			.fn()
			.mockImplementationOnce(async () => ({ ...A, position: 'a1V', version: 2 }))
			.mockImplementationOnce(async () => ({ ...A, position: 'a3', version: 3 }));
		const { board } = await loaded([A, B, C], { moveTask });
		board.dragConsider('todo', [strip(A), strip(B), strip(C)], 1);
		await board.dragFinalize('todo', [strip(B), strip(A), strip(C)], 1);
		await board.dragFinalize('todo', [strip(B), strip(C), { ...strip(A), version: 2 }], 1);
		expect(moveTask).toHaveBeenNthCalledWith(1, 1, { status: 'todo', after_id: 2, version: 1 });
		expect(moveTask).toHaveBeenNthCalledWith(2, 1, { status: 'todo', after_id: 3, version: 2 });
		expect(ids(board.columns).todo).toEqual([2, 3, 1]);
	});
});

describe('dropping on Running', () => {
	const strip = (t: Task): BoardTask => {
		const { description: _d, result: _r, ...rest } = t;
		return rest;
	};
	const queued = { id: 7, task_id: 1, project_id: 1, attempt: 1, status: 'queued' } as unknown as RunSummary;
	const canRun = { can_run: true, runs_agents: true, problem: null, login_command: null, active_runs: 0, max_concurrent_runs: 2 };

	it('starts the run instead of moving the card', async () => {
		const { board, api } = await loaded([A, B], {
			agentsStatus: vi.fn(async () => canRun),
			startRun: vi.fn(async () => ({ ...queued, prompt: 'p', result: null, pending_approvals: [] }))
		});
		board.dragConsider('todo', [strip(B)], 1);
		board.dragConsider('in_progress', [strip(A)], 1);
		expect(await board.dragFinalize('in_progress', [strip(A)], 1)).toBe(true);
		expect(api.startRun).toHaveBeenCalledWith(1);
		expect(api.moveTask).not.toHaveBeenCalled();
		expect(board.find(1)).toMatchObject({ status: 'in_progress', task: { run: { id: 7, status: 'queued' } } });
	});

	it('puts the card back and says why when agents cannot run', async () => {
		const { board, api, notify } = await loaded([A, B], {
			agentsStatus: vi.fn(async () => ({ ...canRun, can_run: false, problem: 'No Claude credentials: run `claude auth login`' })),
			startRun: vi.fn()
		});
		board.dragConsider('todo', [strip(B)], 1);
		expect(await board.dragFinalize('in_progress', [strip(A)], 1)).toBe(false);
		expect(api.startRun).not.toHaveBeenCalled();
		expect(ids(board.columns)).toEqual({ todo: [1, 2], in_progress: [], needs_review: [], done: [] });
		expect(notify).toHaveBeenCalledWith("Couldn't start KAN-1: No Claude credentials: run `claude auth login`");
	});

	it("puts a blocked card back with the server's reason", async () => {
		const blocked = { ...A, blocked: true };
		const { board, notify } = await loaded([blocked, B], {
			agentsStatus: vi.fn(async () => canRun),
			startRun: vi.fn(async () => {
				throw new ApiError(409, 'KAN-1 is blocked by KAN-2 (KAN-2 is in To Do)', {});
			})
		});
		board.dragConsider('todo', [strip(B)], 1);
		expect(await board.dragFinalize('in_progress', [strip(blocked)], 1)).toBe(false);
		expect(ids(board.columns).todo).toEqual([1, 2]);
		expect(notify).toHaveBeenCalledWith("Couldn't start KAN-1: KAN-1 is blocked by KAN-2 (KAN-2 is in To Do)");
	});

	it('lets a keyboard drag pass through Running, and starts the run when it ends there', async () => {
		const startRun = vi.fn(async () => ({ ...queued, prompt: 'p', result: null, pending_approvals: [] }));
		const moveTask = vi.fn(async () => ({ ...A, status: 'needs_review', position: 'a0', version: 2 }));
		const { board, api } = await loaded([A, B], { agentsStatus: vi.fn(async () => canRun), startRun, moveTask });
		board.keyboardDragging = true;
		board.dragConsider('todo', [strip(A), strip(B)], 1);
		expect(await board.dragFinalize('in_progress', [strip(A)], 1)).toBe(false);
		await board.dragFinalize('needs_review', [strip(A)], 1);
		expect(startRun).not.toHaveBeenCalled();
		expect(moveTask).toHaveBeenCalledWith(1, { status: 'needs_review', version: 1 });

		await board.dragFinalize('in_progress', [strip(B)], 2);
		board.dragStopped('in_progress', [strip(B)]);
		await vi.waitFor(() => expect(api.startRun).toHaveBeenCalledWith(2));
		expect(moveTask).toHaveBeenCalledTimes(1);
	});

	it('puts a card held on Running back when Escape ends the keyboard drag', async () => {
		const { board, api } = await loaded([A, B], { agentsStatus: vi.fn(async () => canRun), startRun: vi.fn() });
		board.keyboardDragging = true;
		board.dragConsider('todo', [strip(A), strip(B)], 1);
		await board.dragFinalize('todo', [strip(B)], 1);
		await board.dragFinalize('in_progress', [strip(A)], 1);
		expect(ids(board.columns)).toEqual({ todo: [2], in_progress: [1], needs_review: [], done: [] });
		board.moves.escaping = true;
		board.dragStopped('in_progress', [strip(A)]);
		expect(ids(board.columns)).toEqual({ todo: [1, 2], in_progress: [], needs_review: [], done: [] });
		expect(api.startRun).not.toHaveBeenCalled();
		expect(api.moveTask).not.toHaveBeenCalled();
		expect(board.moves.escaping).toBe(false);
	});
});

describe('editing', () => {
	it('creates a task in the current project', async () => {
		const created = makeTask(10, 'in_progress', 'a0');
		const { board, api } = await loaded([A], { createTask: vi.fn(async () => created) });
		await board.createTask({ title: 'Task 10', status: 'in_progress' });
		expect(api.createTask).toHaveBeenCalledWith({ title: 'Task 10', status: 'in_progress', project_id: 1 });
		expect(ids(board.columns).in_progress).toEqual([10]);
	});

	it('patches with the held version, and refreshes on 409', async () => {
		const current = { ...A, title: 'theirs', version: 4 };
		const updateTask = vi.fn(async () => {
			throw new ApiError(409, 'changed', { detail: 'changed', current });
		});
		const { board } = await loaded([A], { updateTask });
		await expect(board.updateTask(1, { title: 'mine' })).rejects.toThrow('changed');
		expect(updateTask).toHaveBeenCalledWith(1, { title: 'mine', version: 1 });
		expect(board.columns.todo[0].title).toBe('theirs');
	});

	it('sends a second edit of a task once the first is saved, with the version that one made', async () => {
		// The sidebar saves each field as it changes: picking a blocker, then ticking "start
		// automatically" before the first answer came, must not send the old version twice.
		let version = 1;
		const first = deferred<void>();
		const updateTask = vi.fn(async (id: number, body: { version: number } & Record<string, unknown>) => {
			if (version === 1) await first.promise;
			if (body.version !== version) throw new ApiError(409, 'changed', { detail: 'changed', current: { ...A, version } });
			version += 1;
			return { ...A, ...body, version };
		});
		const { board } = await loaded([A], { updateTask });
		const linking = board.updateTask(1, { blocked_by: [2] });
		const switching = board.updateTask(1, { start_when_unblocked: true });
		first.resolve();
		await expect(linking).resolves.toMatchObject({ version: 2 });
		await expect(switching).resolves.toMatchObject({ version: 3, start_when_unblocked: true });
		expect(updateTask.mock.calls.map(([, body]) => body.version)).toEqual([1, 2]);
	});

	it('sends the next edit after one that failed', async () => {
		const updateTask = vi
			.fn()
			.mockRejectedValueOnce(new ApiError(422, 'bad', { detail: 'bad' }))
			.mockImplementation(async (_id: number, body: Record<string, unknown>) => ({ ...A, ...body, version: 2 }));
		const { board } = await loaded([A], { updateTask });
		const bad = board.updateTask(1, { title: '' });
		const good = board.updateTask(1, { title: 'fine' });
		await expect(bad).rejects.toThrow('bad');
		await expect(good).resolves.toMatchObject({ title: 'fine' });
	});

	it('deletes a task', async () => {
		const { board, api } = await loaded([A, B]);
		await board.deleteTask(1);
		expect(api.deleteTask).toHaveBeenCalledWith(1);
		expect(ids(board.columns).todo).toEqual([2]);
	});
});

describe('filters', () => {
	const strip = (t: Task): BoardTask => {
		const { description: _d, result: _r, ...rest } = t;
		return rest;
	};
	const bug = makeTask(5, 'todo', 'a05', { labels: ['bug'] }); // between A and B
	const bug2 = makeTask(6, 'todo', 'a5', { labels: ['bug'] });

	it('shows only matching cards and counts the hidden ones', async () => {
		const { board } = await loaded([A, bug, B, bug2, D]);
		expect(board.shown).toBe(board.lists);
		board.filters = { labels: ['bug'], priorities: [], statuses: [], needsMe: false };
		expect(ids(board.shown)).toEqual({ todo: [5, 6], in_progress: [], needs_review: [], done: [] });
		expect(board.hiddenCount).toBe(3);
		// a live change that makes a card match shows it; columns that did not change keep their array
		const done = board.shown.done;
		board.applyEvent(event('task.updated', { ...A, labels: ['bug'], version: 2 }));
		expect(ids(board.shown).todo).toEqual([1, 5, 6]);
		expect(board.shown.done).toBe(done);
		expect(board.hiddenCount).toBe(2);
	});

	it('keeps hidden cards in place when a shown card is dragged', async () => {
		const { board, api } = await loaded([A, bug, B, bug2], {
			moveTask: vi.fn(async () => ({ ...bug2, position: 'a02', version: 2 }))
		});
		board.filters = { labels: ['bug'], priorities: [], statuses: [], needsMe: false };
		// the library sees [bug, bug2]; bug2 is dragged above bug
		const shown = [strip(bug2), strip(bug)];
		board.dragConsider('todo', board.withHidden('todo', shown, 6), 6);
		await board.dragFinalize('todo', board.withHidden('todo', shown, 6), 6);
		expect(api.moveTask).toHaveBeenCalledWith(6, { status: 'todo', after_id: 1, version: 1 });
		expect(ids(board.lists).todo).toEqual([1, 6, 5, 2]);
		expect(ids(board.shown).todo).toEqual([6, 5]);
	});

	it('remembers the newest event of the first snapshot only', async () => {
		const api = fakeApi({ getBoard: vi.fn(async () => ({ ...makeBoard([A]), last_event_id: 40 })) });
		const board = new BoardState({ api, notify: vi.fn() });
		await board.load(1);
		expect(board.snapshotEventId).toBe(40);
		api.getBoard.mockImplementation(async () => ({ ...makeBoard([A]), last_event_id: 55 }));
		await board.load(1, 'x');
		expect(board.snapshotEventId).toBe(40);
		expect(board.snapshots).toBe(2);
		await board.load(2);
		expect(board.snapshotEventId).toBe(55);
	});
});

describe('prefetch', () => {
	it('hands the board asked for before the page mounted to its first load, once', async () => {
		const getBoard = vi.fn(async () => ({ ...makeBoard([A, B]), last_event_id: 17 }));
		const board = new BoardState({ api: fakeApi({ getBoard }), notify: vi.fn() });
		board.prefetch(1, '');
		expect(getBoard).toHaveBeenCalledTimes(1);
		await board.load(1, '');
		expect(getBoard).toHaveBeenCalledTimes(1);
		expect(board.lists.todo.map((t) => t.id)).toEqual([1, 2]);
		expect(board.lastEventId).toBe(17);
		await board.load(1, '');
		expect(getBoard).toHaveBeenCalledTimes(2); // a reload asks again
	});

	it('is not used for another board or query', async () => {
		const getBoard = vi.fn(async (_projectId: number, _q?: string) => makeBoard([A]));
		const board = new BoardState({ api: fakeApi({ getBoard }), notify: vi.fn() });
		board.prefetch(1, '');
		await board.load(1, 'login');
		expect(getBoard.mock.calls.map((call) => call[1])).toEqual([undefined, 'login']);
	});

	it("takes app.html's early request when it succeeded, and asks again when it did not", async () => {
		const holder = globalThis as { __kanbanBoard?: unknown };
		const early = { ...makeBoard([C]), last_event_id: 9 };
		holder.__kanbanBoard = { projectId: 1, q: '', response: Promise.resolve(new Response(JSON.stringify(early))) };
		const getBoard = vi.fn(async () => makeBoard([A]));
		const board = new BoardState({ api: fakeApi({ getBoard }), notify: vi.fn() });
		board.prefetch(1, '');
		await board.load(1, '');
		expect(getBoard).not.toHaveBeenCalled();
		expect(board.lists.todo.map((t) => t.id)).toEqual([3]);
		expect(holder.__kanbanBoard).toBeUndefined();

		holder.__kanbanBoard = { projectId: 1, q: '', response: Promise.resolve(new Response('no', { status: 401 })) };
		board.prefetch(1, '');
		await board.load(1, '');
		expect(getBoard).toHaveBeenCalledTimes(1);
		expect(board.lists.todo.map((t) => t.id)).toEqual([1]);
	});
});
