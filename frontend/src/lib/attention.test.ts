import { describe, expect, it, vi } from 'vitest';
import type { BoardEvent } from '$lib/api/types';
import { noticeFor, tabTitle, toolSummary, type TaskLookup } from './attention';
import { AttentionState, type NoticeContext } from '$lib/state/attention.svelte';
import { event, makeRun, makeTask } from '$lib/test/fixtures';

const task = { ...makeTask(5, 'in_progress', 'a0', { title: 'Tidy the build' }), run: makeRun(9, 5, 'running') };
const lookup: TaskLookup = {
	byId: (id) => (id === 5 ? task : null),
	byRun: (id) => (id === 9 ? task : null)
};

function approvalEvent(runId = 9, input: Record<string, unknown> = { command: 'rm -rf build' }): BoardEvent {
	return {
		id: 1000 + runId,
		type: 'approval.requested',
		project_id: 1,
		created_at: '2026-01-01T00:00:00Z',
		payload: {
			id: 3,
			run_id: runId,
			tool_name: 'Bash',
			input,
			status: 'pending',
			decision: null,
			message: null,
			created_at: '2026-01-01T00:00:00Z',
			decided_at: null
		}
	} as BoardEvent;
}

describe('what an event tells the user', () => {
	it('an approval: the task, the tool and what it is about to do', () => {
		expect(noticeFor(approvalEvent(), lookup)).toMatchObject({
			kind: 'approval',
			taskId: 5,
			title: 'KAN-5 needs approval',
			body: 'Bash: rm -rf build · Tidy the build'
		});
		expect(noticeFor(approvalEvent(77), lookup)).toMatchObject({ taskId: null, runId: 77, title: 'An agent needs approval' });
	});

	it('a finished run: ready for review, or a workflow step done; a check step says nothing', () => {
		const done = event('run.finished', makeRun(9, 5, 'succeeded'));
		expect(noticeFor(done, lookup)).toMatchObject({ kind: 'finished', taskId: 5, title: 'KAN-5 is ready for review', body: 'Tidy the build' });
		const step = { ...task, workflow_step: 'plan' };
		expect(noticeFor(done, { ...lookup, byId: () => step })?.title).toBe('KAN-5 finished workflow step plan');
		expect(noticeFor(event('run.finished', makeRun(9, 5, 'succeeded', { kind: 'check' })), lookup)).toBeNull();
	});

	it('a failed run: its reason', () => {
		const failed = event('run.finished', makeRun(9, 5, 'failed', { error: '\nNo Anthropic credentials: set ANTHROPIC_API_KEY\nmore' }));
		expect(noticeFor(failed, lookup)).toMatchObject({
			kind: 'failed',
			title: "KAN-5's run failed",
			body: 'No Anthropic credentials: set ANTHROPIC_API_KEY'
		});
		expect(noticeFor(event('run.finished', makeRun(9, 5, 'failed')), lookup)?.body).toBe('No reason given.');
	});

	it('nothing for cancelled or interrupted runs and other events', () => {
		expect(noticeFor(event('run.finished', makeRun(9, 5, 'cancelled')), lookup)).toBeNull();
		expect(noticeFor(event('run.finished', makeRun(9, 5, 'interrupted')), lookup)).toBeNull();
		expect(noticeFor(event('run.updated', makeRun(9, 5, 'waiting_approval')), lookup)).toBeNull();
		expect(noticeFor(event('task.moved', makeTask(5, 'needs_review', 'a0')), lookup)).toBeNull();
	});

	it('sums a tool call up on one short line', () => {
		expect(toolSummary('Write', { file_path: 'a.txt', content: 'x' })).toBe('Write: a.txt');
		expect(toolSummary('Bash', { command: 'echo  a\n  b' })).toBe('Bash: echo a b');
		expect(toolSummary('Custom', { n: 1 })).toBe('Custom: {"n":1}');
		expect(toolSummary('Custom', {})).toBe('Custom');
		expect(toolSummary('Bash', { command: 'x'.repeat(200) }).length).toBe('Bash: '.length + 80);
	});

	it('titles the tab with the count of tasks that need the user', () => {
		expect(tabTitle('Demo', 3)).toBe('(3) Kanban Orchestrator — Demo');
		expect(tabTitle('Demo', 0)).toBe('Kanban Orchestrator — Demo');
		expect(tabTitle(null, 0)).toBe('Kanban Orchestrator');
	});
});

class FakeNotification {
	static permission: NotificationPermission = 'default';
	static requestPermission = vi.fn(async () => (FakeNotification.permission = 'granted'));
	static shown: FakeNotification[] = [];
	onclick: (() => void) | null = null;
	close = vi.fn();
	constructor(
		public title: string,
		public options: NotificationOptions
	) {
		FakeNotification.shown.push(this);
	}
}

function setUp(inFront: boolean) {
	FakeNotification.permission = 'default';
	FakeNotification.shown = [];
	localStorage.clear();
	const toasts: string[] = [];
	const actions: (() => void)[] = [];
	const state = new AttentionState({
		toast: (notice, open) => {
			toasts.push(notice.title);
			actions.push(open);
		},
		notificationApi: () => FakeNotification as unknown as typeof Notification,
		inFront: () => inFront
	});
	const open = vi.fn();
	const openRun = vi.fn();
	const context: NoticeContext = { ...lookup, snapshotEventId: 100, open, openRun, isOpen: () => false };
	return { state, toasts, actions, open, openRun, context };
}

describe('toasts and browser notifications', () => {
	it('shows live events once, never those of the first snapshot', () => {
		const { state, toasts, context } = setUp(true);
		const old = { ...event('run.finished', makeRun(9, 5, 'failed')), id: 100 } as BoardEvent;
		expect(state.handle(old, context)).toBeNull();
		const live = { ...old, id: 101 } as BoardEvent;
		expect(state.handle(live, context)?.kind).toBe('failed');
		expect(state.handle(live, context)).toBeNull(); // a replay after a reconnect
		expect(state.handle(live, { ...context, snapshotEventId: null })).toBeNull();
		expect(toasts).toEqual(["KAN-5's run failed"]);
	});

	it("opens the task, or the run's task when the board does not hold it", () => {
		const { state, actions, open, openRun, context } = setUp(true);
		state.handle(approvalEvent(9), context);
		state.handle(approvalEvent(77), context);
		actions.forEach((action) => action());
		expect(open).toHaveBeenCalledWith(5);
		expect(openRun).toHaveBeenCalledWith(77);
	});

	it('leaves out the toast for an approval the open panel already asks', () => {
		const { state, toasts, context } = setUp(true);
		state.handle(approvalEvent(), { ...context, isOpen: (id) => id === 5 });
		expect(toasts).toEqual([]);
	});

	it('notifies the browser only when opted in, allowed and the board is not in front', async () => {
		const hidden = setUp(false);
		hidden.state.handle(approvalEvent(9), hidden.context);
		expect(FakeNotification.shown).toHaveLength(0); // not opted in
		expect(await hidden.state.enable()).toBe('granted');
		expect(hidden.state.enabled).toBe(true);
		expect(localStorage.getItem('kanban.browserNotifications')).toBe('true');
		hidden.state.handle({ ...approvalEvent(9), id: 2001 } as BoardEvent, hidden.context);
		expect(FakeNotification.shown.map((n) => [n.title, n.options.body])).toEqual([
			['KAN-5 needs approval', 'Bash: rm -rf build · Tidy the build']
		]);
		FakeNotification.shown[0].onclick?.();
		expect(hidden.open).toHaveBeenCalledWith(5);
		expect(FakeNotification.shown[0].close).toHaveBeenCalled();

		const front = setUp(true);
		FakeNotification.permission = 'granted';
		await front.state.enable();
		front.state.handle(approvalEvent(9), front.context);
		expect(FakeNotification.shown).toHaveLength(0);
		expect(front.toasts).toEqual(['KAN-5 needs approval']);
	});

	it('remembers a refusal and the opt-out', async () => {
		const { state } = setUp(false);
		FakeNotification.requestPermission.mockImplementationOnce(async () => (FakeNotification.permission = 'denied'));
		expect(await state.enable()).toBe('denied');
		expect(state.enabled).toBe(false);
		expect(state.optedIn).toBe(false);
		FakeNotification.permission = 'granted';
		await state.enable();
		state.disable();
		expect(state.enabled).toBe(false);
		expect(localStorage.getItem('kanban.browserNotifications')).toBe('false');
	});
});
