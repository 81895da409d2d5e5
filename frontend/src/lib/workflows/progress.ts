/**
 * A workflow's progress as its card shows it, worked out from the board's own cards (its step
 * cards: the same `workflow_id` and a `workflow_step`), so it follows the live events with no
 * request of its own. The sidebar's graph asks the server (GET /api/workflows/{id}).
 */
import type { BoardTask, WorkflowPhase } from '$lib/api/types';

type Card = Pick<BoardTask, 'status' | 'run'>;
export type CardProgress = { done: number; total: number; phase: WorkflowPhase | null };

const FINISHED_BADLY = new Set(['failed', 'cancelled', 'interrupted']);

/** Is this card a workflow's own card (not one of its steps)? */
export function isWorkflowCard(task: Pick<BoardTask, 'workflow_id' | 'workflow_step'>): boolean {
	return task.workflow_id != null && task.workflow_step == null;
}

/** Is this card a workflow's step? */
export function isStepCard(task: Pick<BoardTask, 'workflow_id' | 'workflow_step'>): boolean {
	return task.workflow_id != null && task.workflow_step != null;
}

export type WorkflowCards = { card: BoardTask | null; steps: BoardTask[] };

/** Each workflow's cards on the board, by workflow id: its own card and its step cards. */
export function indexWorkflows(cards: Iterable<BoardTask>): Map<number, WorkflowCards> {
	const index = new Map<number, WorkflowCards>();
	for (const card of cards) {
		if (card.workflow_id == null) continue;
		let entry = index.get(card.workflow_id);
		if (!entry) index.set(card.workflow_id, (entry = { card: null, steps: [] }));
		if (card.workflow_step == null) entry.card = card;
		else entry.steps.push(card);
	}
	return index;
}

/**
 * Steps done (in the Done column) of the steps on the board, and the phase as the server
 * would say it: done once the workflow's card is, stalled when a step's run ended badly and
 * it is back in To Do, needs you when a step waits in Review (or its run for a person's
 * answer), running while the card is in Running. A card elsewhere (moved by hand, or
 * cancelled: back in To Do) has no phase here; its sidebar says what the server knows.
 */
export function cardProgress(parent: Pick<BoardTask, 'status'>, steps: readonly Card[]): CardProgress {
	const done = steps.filter((step) => step.status === 'done').length;
	const progress = { done, total: steps.length };
	if (parent.status === 'done') return { ...progress, phase: 'done' };
	if (parent.status !== 'in_progress') return { ...progress, phase: null };
	if (steps.some((step) => step.status === 'todo' && step.run && FINISHED_BADLY.has(step.run.status))) {
		return { ...progress, phase: 'stalled' };
	}
	if (steps.some((step) => step.status === 'needs_review' || step.run?.status === 'waiting_approval')) {
		return { ...progress, phase: 'needs_you' };
	}
	return { ...progress, phase: 'running' };
}

export const PHASE_TITLES: Record<WorkflowPhase, string> = {
	running: 'Running',
	needs_you: 'Needs you',
	stalled: 'Stalled',
	done: 'Done',
	cancelled: 'Cancelled'
};
