import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen, within } from '@testing-library/svelte';
import type { RunSummary } from '$lib/api/types';
import RunsTab from '$lib/components/runs/runs-tab.svelte';
import TaskRunBar from '$lib/components/runs/task-run-bar.svelte';
import { BoardState } from '$lib/state/board.svelte';
import { runs } from '$lib/state/runs.svelte';
import { makeTask } from '$lib/test/fixtures';

afterEach(() => {
	cleanup();
	vi.restoreAllMocks();
	runs.history.clear();
});

function run(id: number, cost: number, taskCost: number): RunSummary {
	return {
		id,
		task_id: 1,
		project_id: 1,
		attempt: id,
		status: 'succeeded',
		kind: 'agent',
		reason: 'start',
		check_passed: null,
		session_id: 's',
		branch: 'kanban/kan-1-task',
		base_commit: null,
		head_commit: null,
		error: null,
		cost_usd: cost,
		task_cost_usd: taskCost,
		input_tokens: 100,
		output_tokens: 10,
		turns: 1,
		duration_ms: 1000,
		created_at: '2026-01-01T00:00:00Z',
		started_at: null,
		finished_at: null,
		starts: 1,
		owner: null,
		host: null,
		lease_expires_at: null,
		waiting_for: null
	};
}

// Each run's own cost (a resumed session's run is not charged for the earlier ones) and the task's total.
const history = [run(3, 0.006, 0.036), run(2, 0.012, 0.03), run(1, 0.018, 0.018)];

describe("A task's cost", () => {
	it('shows every run at its own cost and the task total in the Runs tab', async () => {
		vi.spyOn(runs, 'loadHistory').mockImplementation(async (taskId: number) => {
			runs.history.set(taskId, history);
			return history;
		});
		const task = makeTask(1, 'needs_review', 'a0');
		render(RunsTab, { board: new BoardState({ notify: vi.fn() }), task });
		expect(await screen.findByTestId('runs-task-total')).toHaveTextContent('Task total $0.0360 · 3 attempts');
		const rows = screen.getAllByTestId('run-row');
		expect(rows.map((row) => within(row).getByTestId('run-row-cost').textContent)).toEqual(['$0.0060', '$0.0120', '$0.0180']);
	});

	it("shows the newest run's cost and the task total in the run bar", async () => {
		runs.history.set(1, history);
		render(TaskRunBar, { board: new BoardState({ notify: vi.fn() }), task: makeTask(1, 'needs_review', 'a0') });
		expect(screen.getByTestId('run-cost')).toHaveTextContent('$0.0060');
		expect(screen.getByTestId('run-bar-task-total')).toHaveTextContent('task total $0.0360');
	});
});
