import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import type { BoardTask, RunSummary, TaskStatus } from '$lib/api/types';
import TaskCard from '$lib/components/board/task-card.svelte';
import BoardColumn from '$lib/components/board/board-column.svelte';
import { BoardState } from '$lib/state/board.svelte';
import { runs } from '$lib/state/runs.svelte';
import { fakeApi, makeBoard, makeTask } from '$lib/test/fixtures';

afterEach(() => {
	cleanup();
	vi.restoreAllMocks();
});

async function hover() {
	await fireEvent.mouseOver(screen.getByTestId('task-card'));
}

function card(status: TaskStatus, run: Partial<RunSummary> | null = null): BoardTask {
	const { description: _d, result: _r, ...task } = makeTask(1, status, 'a0');
	return {
		...task,
		run: run && ({ id: 3, task_id: 1, project_id: 1, attempt: 1, status: 'running', error: null, cost_usd: null, ...run } as RunSummary)
	} as BoardTask;
}

describe('Agent buttons on a card', () => {
	it('offers Run in To Do; a click or Enter starts a run and does not open the card', async () => {
		const start = vi.spyOn(runs, 'start').mockResolvedValue(null);
		const board = new BoardState({ api: fakeApi({ getBoard: vi.fn(async () => makeBoard([makeTask(1, 'todo', 'a0')])) }), notify: vi.fn() });
		await board.load(1);
		const onOpen = vi.fn();
		render(BoardColumn, { board, status: 'todo', onOpen, onCreate: vi.fn() });
		expect(screen.queryByTestId('run-button')).toBeNull(); // rendered on hover only
		await fireEvent.mouseOver(screen.getByTestId('task-card'));
		await fireEvent.click(screen.getByTestId('run-button'));
		expect(start).toHaveBeenCalledWith(1);
		const enter = await fireEvent.keyDown(screen.getByTestId('run-button'), { key: 'Enter' });
		expect(enter).toBe(true); // not prevented: the button's own click follows
		expect(onOpen).not.toHaveBeenCalled();
		expect(screen.queryByTestId('cancel-button')).toBeNull();
	});

	it('offers Run in every column while no run is active', async () => {
		render(TaskCard, { task: card('needs_review', { status: 'succeeded', cost_usd: 0.01234 }) });
		await hover();
		expect(screen.getByTestId('run-button')).toHaveAttribute('title', 'Run the agent again');
		expect(screen.getByTestId('run-cost')).toHaveTextContent('$0.0123');
		cleanup();
		render(TaskCard, { task: card('done', { status: 'succeeded' }) });
		await hover();
		expect(screen.getByTestId('run-button')).toBeInTheDocument();
		cleanup();
		render(TaskCard, { task: card('in_progress') });
		await hover();
		expect(screen.getByTestId('run-button')).toHaveAttribute('title', 'Run an agent on this task');
	});

	it("does not show a failed run's outcome on a card moved to Running by hand", async () => {
		render(TaskCard, { task: card('in_progress', { status: 'failed', error: 'no credentials' }) });
		expect(screen.queryByTestId('run-badge')).toBeNull();
		await hover();
		expect(screen.getByTestId('run-button')).toHaveAttribute('title', 'Run the agent again');
		cleanup();
		render(TaskCard, { task: card('todo', { status: 'failed', error: 'no credentials' }) });
		expect(screen.getByTestId('run-badge')).toHaveTextContent('Run failed');
	});

	it('shows a spinner and Cancel while running, and Resume for an interrupted run', async () => {
		const cancel = vi.spyOn(runs, 'cancel').mockResolvedValue(null);
		render(TaskCard, { task: card('in_progress', { status: 'running' }) });
		await hover();
		expect(screen.getByTestId('run-spinner')).toBeInTheDocument();
		expect(screen.queryByTestId('run-button')).toBeNull();
		await fireEvent.click(screen.getByTestId('cancel-button'));
		expect(cancel).toHaveBeenCalledWith(3);
		cleanup();

		const resume = vi.spyOn(runs, 'resume').mockResolvedValue(null);
		render(TaskCard, { task: card('in_progress', { status: 'interrupted' }) });
		await hover();
		await fireEvent.click(screen.getByTestId('resume-button'));
		expect(resume).toHaveBeenCalledWith(3);
	});

	it('marks a run that waits for approval', async () => {
		render(TaskCard, { task: card('in_progress', { status: 'waiting_approval' }) });
		await hover();
		expect(screen.getByTestId('run-badge')).toHaveTextContent('Needs approval');
		expect(screen.getByTestId('run-badge')).toHaveAttribute('data-run-status', 'waiting_approval');
	});
});
