import { afterEach, describe, expect, it, vi } from 'vitest';
import { tick } from 'svelte';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import TaskCard from './task-card.svelte';
import BoardColumn from './board-column.svelte';
import Markdown from '../tasks/markdown.svelte';
import { BoardState } from '$lib/state/board.svelte';
import { event, fakeApi, makeBoard, makeRun, makeTask } from '$lib/test/fixtures';

afterEach(() => cleanup());

describe('TaskCard', () => {
	it('shows the short id, title, labels and priority', () => {
		const task = makeTask(12, 'todo', 'a0', { title: 'Add dark mode', labels: ['ui', 'frontend'], priority: 'high' });
		render(TaskCard, { task });
		expect(screen.getByText('KAN-12')).toBeInTheDocument();
		expect(screen.getByText('Add dark mode')).toBeInTheDocument();
		expect(screen.getByText('ui')).toBeInTheDocument();
		expect(screen.getByText('frontend')).toBeInTheDocument();
		expect(screen.getByRole('img', { name: 'High' })).toBeInTheDocument();
	});

	it("shows the newest agent run's state", () => {
		const run = { id: 3, task_id: 1, project_id: 1, status: 'waiting_approval', attempt: 1, error: null };
		render(TaskCard, { task: { ...makeTask(1, 'in_progress', 'a0'), run } as never });
		expect(screen.getByTestId('run-badge')).toHaveTextContent('Needs approval');
	});

	it('says why a queued run waits when no worker can take it', () => {
		const reason = 'Waiting for a worker on build-2 (its Claude session is there)';
		const run = { id: 3, task_id: 1, project_id: 1, status: 'queued', attempt: 2, error: null, waiting_for: reason };
		render(TaskCard, { task: { ...makeTask(1, 'in_progress', 'a0'), run } as never });
		const badge = screen.getByTestId('run-badge');
		expect(badge).toHaveTextContent('Waiting for a worker');
		expect(badge).toHaveAttribute('title', reason);
		expect(badge).toHaveAttribute('data-waiting-for', reason);
		expect(screen.queryByTestId('run-spinner')).toBeNull();
	});

	it("shows what the task's runs cost together, not only the newest run", () => {
		const run = { id: 3, task_id: 1, project_id: 1, status: 'succeeded', attempt: 3, error: null, cost_usd: 0.006, task_cost_usd: 0.036 };
		render(TaskCard, { task: { ...makeTask(1, 'needs_review', 'a0'), run } as never });
		expect(screen.getByTestId('run-cost')).toHaveTextContent('$0.0360');
		expect(screen.getByTestId('run-cost')).toHaveAttribute('title', "The task's attempts together (3 attempts)");
	});

	it('shows what blocks it, with every reason in the tooltip, and a disabled Run', async () => {
		const blocker = (id: number, blocking: boolean, reason: string | null) => ({
			task_id: id,
			short_id: `KAN-${id}`,
			title: `Task ${id}`,
			status: blocking ? ('todo' as const) : ('done' as const),
			run_status: null,
			blocking,
			reason
		});
		const task = makeTask(7, 'todo', 'a0', {
			blocked: true,
			start_when_unblocked: true,
			blocked_by: [blocker(2, false, null), blocker(3, true, 'KAN-3 is in To Do'), blocker(4, true, "KAN-4's run failed")]
		});
		render(TaskCard, { task });
		const badge = screen.getByTestId('blocked-badge');
		expect(badge).toHaveTextContent('Blocked by KAN-3 +1');
		expect(badge).toHaveAttribute('title', "KAN-3 is in To Do\nKAN-4's run failed");
		expect(screen.getByText('auto-start')).toBeInTheDocument();
		await fireEvent.mouseOver(screen.getByTestId('task-card'));
		expect(screen.getByTestId('run-button')).toBeDisabled();
		expect(screen.getByTestId('run-button')).toHaveAttribute('title', "Blocked: KAN-3 is in To Do\nKAN-4's run failed");
	});

	it('offers its run buttons while the pointer is over it, also over its parts, and not after', async () => {
		render(TaskCard, { task: makeTask(4, 'todo', 'a0') });
		const cardElement = screen.getByTestId('task-card');
		expect(screen.queryByTestId('run-button')).toBeNull();
		await fireEvent.mouseOver(cardElement);
		expect(screen.getByTestId('run-button')).toBeInTheDocument();
		await fireEvent.mouseOut(cardElement, { relatedTarget: screen.getByTestId('task-title') });
		expect(screen.getByTestId('run-button')).toBeInTheDocument();
		await fireEvent.mouseOut(cardElement, { relatedTarget: document.body });
		expect(screen.queryByTestId('run-button')).toBeNull();
	});

	it('shows no badge once every task it waits for is done', () => {
		const done = { task_id: 2, short_id: 'KAN-2', title: 'x', status: 'done' as const, run_status: null, blocking: false, reason: null };
		render(TaskCard, { task: makeTask(7, 'todo', 'a0', { blocked_by: [done] }) });
		expect(screen.queryByTestId('blocked-badge')).toBeNull();
	});

	it("shows a step's kind; neither a workflow's card nor an approval step offers Run", async () => {
		const approval = makeTask(3, 'needs_review', 'a0', { workflow_id: 1, workflow_step: 'approve', workflow_step_kind: 'approval' });
		render(TaskCard, { task: approval });
		expect(screen.getByTestId('step-kind')).toHaveAttribute('data-kind', 'approval');
		expect(screen.getByRole('img', { name: 'Approval step' })).toBeInTheDocument();
		await fireEvent.mouseOver(screen.getByTestId('task-card'));
		expect(screen.queryByTestId('run-button')).toBeNull();
		cleanup();

		render(TaskCard, { task: makeTask(1, 'todo', 'a0', { workflow_id: 1 }), workflowSteps: () => [] });
		await fireEvent.mouseOver(screen.getByTestId('task-card'));
		expect(screen.queryByTestId('run-button')).toBeNull();
		expect(screen.queryByTestId('step-kind')).toBeNull();
		cleanup();

		render(TaskCard, { task: makeTask(4, 'todo', 'a0', { workflow_id: 1, workflow_step: 'build', workflow_step_kind: 'agent' }) });
		await fireEvent.mouseOver(screen.getByTestId('task-card'));
		expect(screen.getByTestId('run-button')).toBeInTheDocument();
	});

	it('shows no priority icon for "none"', () => {
		render(TaskCard, { task: makeTask(1, 'todo', 'a0') });
		expect(screen.queryByRole('img')).toBeNull();
	});
});

describe('Markdown', () => {
	it('renders sanitised HTML', () => {
		const { container } = render(Markdown, { source: '**hi** <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>' });
		expect(container.querySelector('strong')?.textContent).toBe('hi');
		expect(container.querySelector('script')).toBeNull();
		expect(container.querySelector('img')?.getAttribute('onerror')).toBeNull();
		expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
	});
});

describe('BoardColumn', () => {
	async function boardWith(tasks = [makeTask(1, 'todo', 'a0'), makeTask(2, 'todo', 'a1')]) {
		const board = new BoardState({ api: fakeApi({ getBoard: vi.fn(async () => makeBoard(tasks)) }), notify: vi.fn() });
		await board.load(1);
		return board;
	}

	it('lists its cards with a count, and opens one on click and on Enter', async () => {
		const board = await boardWith();
		const onOpen = vi.fn();
		render(BoardColumn, { board, status: 'todo', onOpen, onCreate: vi.fn() });
		expect(screen.getByRole('heading', { name: 'To Do' })).toBeInTheDocument();
		expect(screen.getByTestId('column-count').textContent).toBe('2');
		const cards = screen.getAllByTestId('task-card');
		expect(cards.map((c) => c.dataset.shortId)).toEqual(['KAN-1', 'KAN-2']);
		await fireEvent.click(cards[1]);
		expect(onOpen).toHaveBeenLastCalledWith(expect.objectContaining({ id: 2 }));
		await fireEvent.keyDown(cards[0].parentElement!, { key: 'Enter' });
		expect(onOpen).toHaveBeenLastCalledWith(expect.objectContaining({ id: 1 }));
	});

	it('tells the user what to do when empty', async () => {
		const board = await boardWith([]);
		const onCreate = vi.fn();
		render(BoardColumn, { board, status: 'todo', onOpen: vi.fn(), onCreate });
		expect(screen.getByTestId('column-empty').textContent).toContain('Press N');
		await fireEvent.click(screen.getByRole('button', { name: 'New task in To Do' }));
		expect(onCreate).toHaveBeenCalledWith('todo');
	});

	it("shows a workflow's progress on its card, following its step cards' events", async () => {
		const step = (id: number, status: 'todo' | 'in_progress' | 'needs_review' | 'done', stepId: string) =>
			makeTask(id, status, `a${id}`, { workflow_id: 5, workflow_step: stepId, workflow_step_kind: 'agent', parent_id: 1 });
		const board = await boardWith([
			makeTask(1, 'in_progress', 'a0', { workflow_id: 5, title: 'Build a feature: dark mode' }),
			step(2, 'todo', 'plan'),
			step(3, 'todo', 'approve-plan'),
			step(4, 'todo', 'implement'),
			makeTask(9, 'in_progress', 'a9')
		]);
		// The steps move between the other columns (this one's cards stay where they are).
		render(BoardColumn, { board, status: 'in_progress', onOpen: vi.fn(), onCreate: vi.fn() });
		const progress = () => screen.getByTestId('workflow-progress');
		expect(screen.getAllByTestId('workflow-progress')).toHaveLength(1);
		expect(screen.getByTestId('workflow-progress-count')).toHaveTextContent('0/3 steps');
		expect(progress()).toHaveAttribute('data-phase', 'running');

		board.applyEvent(event('task.moved', { ...step(2, 'done', 'plan'), version: 2 }));
		board.applyEvent(event('task.moved', { ...step(3, 'needs_review', 'approve-plan'), version: 2 }));
		await tick();
		expect(screen.getByTestId('workflow-progress-count')).toHaveTextContent('1/3 steps');
		expect(screen.getByTestId('workflow-phase')).toHaveTextContent('Needs you');
		expect(screen.getByRole('progressbar', { name: 'Steps done' })).toHaveAttribute('aria-valuenow', '1');

		// A step's run failed and it went back to To Do: stalled.
		board.applyEvent(event('task.updated', { ...step(4, 'todo', 'implement'), version: 2 }));
		board.applyEvent(event('run.finished', makeRun(8, 4, 'failed')));
		await tick();
		expect(progress()).toHaveAttribute('data-phase', 'stalled');
	});
});
