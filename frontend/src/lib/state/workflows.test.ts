import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '$lib/api/client';
import type { Workflow } from '$lib/api/types';
import { event, fakeApi, makeRun, makeTask, makeWorkflow } from '$lib/test/fixtures';
import { WorkflowsState } from './workflows.svelte';

/** A schedule the test runs by hand: `flush()` fires what is due. */
function manualSchedule() {
	const due: (() => void)[] = [];
	return {
		schedule: (fn: () => void) => {
			due.push(fn);
			return fn;
		},
		cancel: (handle: unknown) => {
			const at = due.indexOf(handle as () => void);
			if (at !== -1) due.splice(at, 1);
		},
		get pending() {
			return due.length;
		},
		flush: async () => {
			for (const fn of due.splice(0)) fn();
			await Promise.resolve();
			await Promise.resolve();
		}
	};
}

function deferred<T>() {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>((r) => (resolve = r));
	return { promise, resolve };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('WorkflowsState', () => {
	it('reads a watched workflow again once per burst of events about its cards', async () => {
		const clock = manualSchedule();
		let version = 0;
		const getWorkflow = vi.fn(async (id: number) => makeWorkflow(id, { title: `read ${++version}` }));
		const state = new WorkflowsState({ api: fakeApi({ getWorkflow }), ...clock });
		state.watch(9);
		await tick();
		expect(state.items.get(9)?.title).toBe('read 1');

		// A step card moved, its run changed, the card itself was updated: one read after the burst.
		state.applyEvent(event('task.moved', makeTask(2, 'in_progress', 'a0', { workflow_id: 9, workflow_step: 'plan' })));
		state.applyEvent(event('run.started', makeRun(5, 3, 'running')));
		state.applyEvent(event('task.updated', makeTask(1, 'in_progress', 'a0', { workflow_id: 9 })));
		expect(clock.pending).toBe(1);
		await clock.flush();
		await tick();
		expect(getWorkflow).toHaveBeenCalledTimes(2);
		expect(state.items.get(9)?.title).toBe('read 2');

		// A run of a card it knows only from the workflow's steps (the payload names no workflow).
		state.applyEvent(event('run.finished', makeRun(6, 4, 'succeeded')));
		state.applyEvent(event('task.deleted', { id: 3, project_id: 1, short_id: 'KAN-3' } as never));
		await clock.flush();
		await tick();
		expect(getWorkflow).toHaveBeenCalledTimes(3);
	});

	it('ignores events about other cards and workflows nobody watches', async () => {
		const clock = manualSchedule();
		const getWorkflow = vi.fn(async (id: number) => makeWorkflow(id));
		const state = new WorkflowsState({ api: fakeApi({ getWorkflow }), ...clock });
		const stop = state.watch(9);
		await tick();
		state.applyEvent(event('task.updated', makeTask(20, 'todo', 'a0')));
		state.applyEvent(event('task.updated', makeTask(21, 'todo', 'a0', { workflow_id: 10 })));
		state.applyEvent(event('run.updated', makeRun(7, 20, 'running')));
		expect(clock.pending).toBe(0);

		stop();
		expect(state.items.has(9)).toBe(false);
		state.applyEvent(event('task.updated', makeTask(2, 'todo', 'a0', { workflow_id: 9 })));
		expect(clock.pending).toBe(0);
		expect(getWorkflow).toHaveBeenCalledTimes(1);
	});

	it('keeps a workflow while any view still watches it, and stops its pending read when none does', async () => {
		const clock = manualSchedule();
		const getWorkflow = vi.fn(async (id: number) => makeWorkflow(id));
		const state = new WorkflowsState({ api: fakeApi({ getWorkflow }), ...clock });
		const first = state.watch(9);
		const second = state.watch(9);
		await tick();
		first();
		first(); // twice is once
		expect(state.isWatched(9)).toBe(true);
		state.applyEvent(event('task.updated', makeTask(2, 'todo', 'a0', { workflow_id: 9 })));
		second();
		expect(state.isWatched(9)).toBe(false);
		expect(clock.pending).toBe(0);
	});

	it('never lets an older read replace a newer one', async () => {
		const reads = [deferred<Workflow>(), deferred<Workflow>()];
		let call = 0;
		const state = new WorkflowsState({ api: fakeApi({ getWorkflow: vi.fn(() => reads[call++].promise) }) });
		state.watch(9);
		const second = state.load(9);
		reads[1].resolve(makeWorkflow(9, { phase: 'needs_you' }));
		await second;
		reads[0].resolve(makeWorkflow(9, { phase: 'running' }));
		await tick();
		expect(state.items.get(9)?.phase).toBe('needs_you');
	});

	it("shows what cancel answered, and a read's failure as the workflow's error", async () => {
		const cancelled = makeWorkflow(9, { status: 'cancelled', phase: 'cancelled' });
		const getWorkflow = vi
			.fn()
			.mockResolvedValueOnce(makeWorkflow(9))
			.mockRejectedValueOnce(new ApiError(404, 'Workflow 9 not found', null));
		const cancelWorkflow = vi.fn(async () => cancelled);
		const state = new WorkflowsState({ api: fakeApi({ getWorkflow, cancelWorkflow }) });
		state.watch(9);
		await tick();
		expect(await state.cancelWorkflow(9)).toBe(cancelled);
		expect(state.items.get(9)?.phase).toBe('cancelled');
		await state.load(9);
		expect(state.errors.get(9)).toBe('Workflow 9 not found');
	});

	it("loads a project's templates; a late answer for another project is dropped", async () => {
		const answers = [deferred<never>(), deferred<never>()];
		let call = 0;
		const listWorkflowTemplates = vi.fn(() => answers[call++].promise);
		const state = new WorkflowsState({ api: fakeApi({ listWorkflowTemplates }) });
		const first = state.loadCatalog(1);
		const second = state.loadCatalog(2);
		answers[1].resolve({ templates: [], problems: [{ source: 'x.yaml', line: 3, field: 'steps', message: 'bad' }] } as never);
		await second;
		answers[0].resolve({ templates: [], problems: [] } as never);
		await first;
		expect(listWorkflowTemplates).toHaveBeenCalledWith(2);
		expect(state.catalogProjectId).toBe(2);
		expect(state.catalog?.problems).toHaveLength(1);
		expect(state.catalogLoading).toBe(false);
	});
});
