import { describe, expect, it } from 'vitest';
import type { BoardTask, RunSummary } from '$lib/api/types';
import { toBoardTask } from '$lib/state/columns.svelte';
import { makeTask } from '$lib/test/fixtures';
import { cardProgress, indexWorkflows, isStepCard, isWorkflowCard } from './progress';

const run = (status: RunSummary['status']) => ({ id: 1, status }) as RunSummary;
const card = (id: number, status: BoardTask['status'], extra: Partial<BoardTask> = {}): BoardTask =>
	({ ...toBoardTask(makeTask(id, status, 'a0')), ...extra }) as BoardTask;

describe('indexWorkflows', () => {
	it("finds each workflow's own card and its step cards, leaving out other cards", () => {
		const cards = [
			card(2, 'done', { workflow_id: 7, workflow_step: 'plan' }),
			card(1, 'in_progress', { workflow_id: 7 }),
			card(3, 'todo', { workflow_id: 7, workflow_step: 'build' }),
			card(4, 'todo'),
			card(5, 'todo', { workflow_id: 8, workflow_step: 'only' })
		];
		const index = indexWorkflows(cards);
		expect([...index.keys()]).toEqual([7, 8]);
		expect(index.get(7)?.card?.id).toBe(1);
		expect(index.get(7)?.steps.map((c) => c.id)).toEqual([2, 3]);
		expect(index.get(8)?.card).toBeNull();
		expect(index.get(8)?.steps.map((c) => c.id)).toEqual([5]);
	});

	it('tells a workflow card from a step card', () => {
		expect(isWorkflowCard(card(1, 'todo', { workflow_id: 7 }))).toBe(true);
		expect(isWorkflowCard(card(1, 'todo', { workflow_id: 7, workflow_step: 'a' }))).toBe(false);
		expect(isStepCard(card(1, 'todo', { workflow_id: 7, workflow_step: 'a' }))).toBe(true);
		expect(isStepCard(card(1, 'todo'))).toBe(false);
		expect(isWorkflowCard(card(1, 'todo'))).toBe(false);
	});
});

describe('cardProgress', () => {
	const running = { status: 'in_progress' as const };

	it('counts the steps in Done', () => {
		const steps = [card(2, 'done'), card(3, 'in_progress', { run: run('running') }), card(4, 'todo')];
		expect(cardProgress(running, steps)).toEqual({ done: 1, total: 3, phase: 'running' });
	});

	it('needs you while a step waits in Review or its run waits for an answer', () => {
		expect(cardProgress(running, [card(2, 'done'), card(3, 'needs_review'), card(4, 'todo')]).phase).toBe('needs_you');
		expect(cardProgress(running, [card(2, 'in_progress', { run: run('waiting_approval') })]).phase).toBe('needs_you');
	});

	it('is stalled when a step ran badly and went back to To Do, before needing you', () => {
		const steps = [card(2, 'needs_review'), card(3, 'todo', { run: run('failed') })];
		expect(cardProgress(running, steps)).toEqual({ done: 0, total: 2, phase: 'stalled' });
		expect(cardProgress(running, [card(3, 'todo', { run: run('cancelled') })]).phase).toBe('stalled');
		expect(cardProgress(running, [card(3, 'todo', { run: run('succeeded') })]).phase).toBe('running');
	});

	it("follows the workflow's card: done in Done, no phase elsewhere", () => {
		const steps = [card(2, 'done'), card(3, 'done')];
		expect(cardProgress({ status: 'done' }, steps)).toEqual({ done: 2, total: 2, phase: 'done' });
		expect(cardProgress({ status: 'todo' }, [card(2, 'todo', { run: run('cancelled') })]).phase).toBeNull();
	});

	it('has nothing to count without step cards', () => {
		expect(cardProgress(running, [])).toEqual({ done: 0, total: 0, phase: 'running' });
	});
});
