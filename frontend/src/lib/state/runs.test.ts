import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '$lib/api/client';
import type { Approval, RunSummary } from '$lib/api/types';
import { event, fakeApi, makeTask } from '$lib/test/fixtures';
import { RunsState } from './runs.svelte';

function runSummary(id: number, status: RunSummary['status'], extra: Partial<RunSummary> = {}): RunSummary {
	return {
		id,
		task_id: 1,
		project_id: 1,
		attempt: id,
		status,
		kind: 'agent',
		reason: 'start',
		check_passed: null,
		session_id: null,
		branch: 'kanban/kan-1-task',
		base_commit: null,
		head_commit: null,
		error: null,
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

function approval(id: number, runId: number, status: Approval['status'] = 'pending'): Approval {
	return {
		id,
		run_id: runId,
		tool_name: 'Bash',
		input: { command: 'make' },
		status,
		decision: null,
		message: null,
		created_at: '2026-01-01T00:00:00Z',
		decided_at: null
	};
}

const approvalEvent = (type: 'approval.requested' | 'approval.resolved', a: Approval) =>
	({ id: 1, type, project_id: 1, created_at: '', payload: a }) as const;

describe('RunsState', () => {
	it('tracks approvals from board events; only a waiting run shows them', () => {
		const runs = new RunsState({ api: fakeApi(), notify: vi.fn() });
		runs.applyEvent(approvalEvent('approval.requested', approval(5, 2)));
		runs.applyEvent(event('run.updated', runSummary(2, 'waiting_approval')));
		expect(runs.pendingFor(runSummary(2, 'waiting_approval')).map((a) => a.id)).toEqual([5]);
		expect(runs.pendingFor(runSummary(2, 'running'))).toEqual([]);

		runs.applyEvent(approvalEvent('approval.resolved', approval(5, 2, 'allowed')));
		expect(runs.approvals.size).toBe(0);

		// A run that ends drops what it waited for (the server expires those).
		runs.applyEvent(approvalEvent('approval.requested', approval(6, 2)));
		runs.applyEvent(event('run.finished', runSummary(2, 'cancelled')));
		expect(runs.approvals.size).toBe(0);
	});

	it('keeps a loaded run history current from events, without refetching', async () => {
		const api = fakeApi({ listRuns: vi.fn(async () => [runSummary(1, 'failed')]) });
		const runs = new RunsState({ api, notify: vi.fn() });
		await runs.loadHistory(1);
		runs.applyEvent(event('run.queued', runSummary(2, 'queued')));
		runs.applyEvent(event('run.started', runSummary(2, 'running')));
		expect(runs.history.get(1)!.map((r) => [r.id, r.status])).toEqual([
			[2, 'running'],
			[1, 'failed']
		]);
		expect(api.listRuns).toHaveBeenCalledTimes(1);
		expect(runs.latest(1, runSummary(1, 'failed'))?.id).toBe(2);
		// Events about tasks whose history nobody looked at are not stored.
		runs.applyEvent(event('run.queued', { ...runSummary(9, 'queued'), task_id: 4 }));
		expect(runs.history.has(4)).toBe(false);
	});

	it('approve returns the merged task, or the conflicting files of a 409', async () => {
		const task = makeTask(1, 'done', 'a0');
		const notify = vi.fn();
		const approveTask = vi
			.fn()
			.mockResolvedValueOnce(task)
			.mockRejectedValueOnce(new ApiError(409, 'Merging conflicts in: a.txt, b.txt', { detail: 'x', files: ['a.txt', 'b.txt'] }))
			.mockRejectedValueOnce(new ApiError(409, 'Task KAN-1 is not in review', { detail: 'Task KAN-1 is not in review' }));
		const runs = new RunsState({ api: fakeApi({ approveTask }), notify });
		expect(await runs.approve(1)).toEqual({ ok: true, task });
		expect(await runs.approve(1)).toMatchObject({ ok: false, files: ['a.txt', 'b.txt'] });
		expect(notify).not.toHaveBeenCalled(); // the caller shows the files
		expect(await runs.approve(1)).toMatchObject({ ok: false, files: [] });
		expect(notify).toHaveBeenCalledWith("Couldn't approve: Task KAN-1 is not in review");
	});

	it('answers an approval once, even when clicked twice', async () => {
		let answer!: (a: Approval) => void;
		const decideApproval = vi.fn(() => new Promise<Approval>((resolve) => (answer = resolve)));
		const runs = new RunsState({ api: fakeApi({ decideApproval }), notify: vi.fn() });
		const waiting = approval(5, 2);
		runs.noteApproval(waiting);
		const first = runs.decide(waiting, 'allow');
		const second = runs.decide(waiting, 'allow');
		expect(runs.isBusy('approval', 5)).toBe(true);
		answer(approval(5, 2, 'allowed'));
		expect(await first).toBe(true);
		expect(await second).toBe(false);
		expect(decideApproval).toHaveBeenCalledTimes(1);
		expect(runs.approvals.size).toBe(0);
	});

	it("streams a run's log again when the run is resumed after its stream ended", () => {
		const sources: { url: string; listeners: Record<string, () => void> }[] = [];
		const runs = new RunsState({
			api: fakeApi(),
			notify: vi.fn(),
			log: {
				url: (id, after) => `/runs/${id}?after=${after}`,
				create: (url) => {
					const source = { url, listeners: {} as Record<string, () => void>, readyState: 1, onopen: null, onerror: null, close() {} };
					sources.push(source);
					return { ...source, addEventListener: (type: string, fn: () => void) => (source.listeners[type] = fn) } as never;
				}
			}
		});
		const log = runs.log(2);
		sources[0].listeners.end();
		expect(log.ended).toBe(true);
		runs.applyEvent(event('run.finished', runSummary(2, 'interrupted')));
		expect(sources).toHaveLength(1);
		runs.applyEvent(event('run.queued', runSummary(2, 'queued')));
		expect(log.ended).toBe(false);
		expect(sources.map((s) => s.url)).toEqual(['/runs/2?after=0', '/runs/2?after=0']);
	});

	it('keeps a few logs open and closes the least recently used', () => {
		const created: { url: string; closed: boolean }[] = [];
		const runs = new RunsState({
			api: fakeApi(),
			notify: vi.fn(),
			keepLogs: 2,
			log: {
				url: (id) => `/runs/${id}`,
				create: (url) => {
					const source = { url, closed: false, readyState: 0, onopen: null, onerror: null, addEventListener() {}, close() { source.closed = true; } };
					created.push(source);
					return source as never;
				}
			}
		});
		const one = runs.log(1);
		runs.log(2);
		expect(runs.log(1)).toBe(one); // reused, and now the most recent
		runs.log(3);
		expect(created.map((s) => [s.url, s.closed])).toEqual([
			['/runs/1', false],
			['/runs/2', true],
			['/runs/3', false]
		]);
	});
});
