import { describe, expect, it, vi } from 'vitest';
import { NeedsMeState } from './needs-me.svelte';
import { event, fakeApi, makeBoard, makeRun, makeTask } from '$lib/test/fixtures';

const review = makeTask(1, 'needs_review', 'a0');
const running = { ...makeTask(2, 'in_progress', 'a0'), run: makeRun(20, 2, 'running') };
const todo = makeTask(3, 'todo', 'a0');

describe('tasks that need the user', () => {
	it('counts Review and waiting approvals, kept by the live events', () => {
		const state = new NeedsMeState(fakeApi());
		state.seed(1, [review, running, todo]);
		expect(state.count).toBe(1);
		state.applyEvent(event('run.updated', makeRun(20, 2, 'waiting_approval')));
		expect(state.count).toBe(2);
		state.applyEvent(event('run.updated', makeRun(19, 2, 'running'))); // an older run's news
		expect(state.count).toBe(2);
		state.applyEvent(event('run.updated', makeRun(20, 2, 'running')));
		state.applyEvent(event('task.moved', { ...review, status: 'done', version: 2 }));
		expect(state.count).toBe(0);
		state.applyEvent(event('task.moved', { ...review, status: 'needs_review', version: 1 })); // stale
		expect(state.count).toBe(0);
		state.applyEvent(event('task.created', makeTask(4, 'needs_review', 'a1')));
		expect(state.count).toBe(1);
		state.applyEvent(event('task.deleted', { id: 4, short_id: 'KAN-4', project_id: 1 }));
		expect(state.count).toBe(0);
	});

	it("ignores other projects' events and starts over for another project", () => {
		const state = new NeedsMeState(fakeApi());
		state.seed(1, [review]);
		state.applyEvent(event('task.created', { ...makeTask(9, 'needs_review', 'a0'), project_id: 2 }));
		expect(state.count).toBe(1);
		state.seed(2, []);
		expect(state.count).toBe(0);
	});

	it('loads the whole board when the one on screen is a search', async () => {
		const api = fakeApi({ getBoard: vi.fn(async () => makeBoard([review, makeTask(5, 'needs_review', 'a1')])) });
		const state = new NeedsMeState(api);
		await state.load(1);
		expect(api.getBoard).toHaveBeenCalledWith(1);
		expect(state.count).toBe(2);
	});
});
