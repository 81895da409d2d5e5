import { describe, expect, it, vi } from 'vitest';
import type { Blocker, BoardTask } from '$lib/api/types';
import { BoardState } from '$lib/state/board.svelte';
import { event, fakeApi, makeBoard, makeTask } from '$lib/test/fixtures';
import {
	asBlocker,
	blockedBadge,
	blockedReasons,
	blockerState,
	dependencyCandidates,
	isNewer,
	openBlockers,
	withBlocker,
	withoutBlocker
} from './dependencies';

const blocker = (id: number | null, short: string, blocking: boolean, reason: string | null): Blocker => ({
	task_id: id,
	short_id: short,
	title: id == null ? null : `Task ${id}`,
	status: id == null ? null : blocking ? 'todo' : 'done',
	run_status: null,
	blocking,
	reason
});

const three = makeTask(3, 'todo', 'a0');
const five = makeTask(5, 'done', 'a0');
const dependent = makeTask(7, 'todo', 'a1', {
	blocked: true,
	blocked_by: [
		blocker(5, 'KAN-5', false, null),
		blocker(3, 'KAN-3', true, 'KAN-3 is in To Do'),
		blocker(null, 'KAN-2', true, 'KAN-2 was deleted')
	]
});

describe('dependencies', () => {
	it('shows only what still blocks, first one in the badge, every reason in the tooltip', () => {
		expect(openBlockers(dependent).map((b) => b.short_id)).toEqual(['KAN-3', 'KAN-2']);
		expect(blockedBadge(dependent)).toBe('Blocked by KAN-3 +1');
		expect(blockedReasons(dependent)).toBe('KAN-3 is in To Do\nKAN-2 was deleted');
		expect(blockedBadge(three)).toBeNull();
		expect(blockerState(dependent.blocked_by[0])).toBe('done');
		expect(blockerState(dependent.blocked_by[2])).toBe('KAN-2 was deleted');
	});

	it('offers the other tasks that are not linked yet, and edits the id list', () => {
		const other = makeTask(8, 'needs_review', 'a0');
		const all = [three, five, dependent, other] as BoardTask[];
		expect(dependencyCandidates(all, dependent).map((t) => t.id)).toEqual([8]);
		expect(withBlocker(dependent, 8)).toEqual([5, 3, 8]);
		expect(withBlocker(dependent, 3)).toEqual([5, 3]);
		expect(withoutBlocker(dependent, dependent.blocked_by[1])).toEqual([5]);
		expect(withoutBlocker(dependent, dependent.blocked_by[2])).toEqual([5, 3]); // the deleted link drops out
	});

	it('takes an event of the same version when the blockers changed, never an older one', () => {
		const unblocked = { ...dependent, blocked: false, blocked_by: [blocker(5, 'KAN-5', false, null)] };
		expect(isNewer(dependent, unblocked)).toBe(true);
		expect(isNewer(dependent, { ...dependent })).toBe(false);
		expect(isNewer({ ...dependent, version: 2 }, unblocked)).toBe(false);
		expect(isNewer(dependent, { ...dependent, version: 2 })).toBe(true);
	});

	it("updates a card when its predecessor's event says it is unblocked", async () => {
		const api = fakeApi({ getBoard: vi.fn(async () => makeBoard([three, five, dependent])) });
		const board = new BoardState({ api, notify: vi.fn() });
		await board.load(1);
		expect(board.find(7)?.task.blocked).toBe(true);
		board.applyEvent(event('task.updated', { ...dependent, blocked: false, blocked_by: [] }));
		expect(board.find(7)?.task.blocked).toBe(false);
		expect(board.find(7)?.task.blocked_by).toEqual([]);
	});

	it('shows a picked card as the blocker it will be, before the task is saved', () => {
		expect(asBlocker(three)).toMatchObject({ task_id: 3, blocking: true, reason: 'KAN-3 is in To Do' });
		expect(asBlocker(five)).toMatchObject({ task_id: 5, blocking: false, reason: null });
	});
});
