/**
 * A workflow's steps as a graph laid out left to right: a step's column is the longest path
 * to it from a step that needs nothing, its row its place among the column's steps in the
 * template's order. No layout library: workflows have at most 50 steps.
 */
import type { WorkflowStep } from '$lib/api/types';

export type GraphStep = { id: string; needs: readonly string[] };
export type Placement = { column: number; row: number };
export type Size = { width: number; height: number; gapX: number; gapY: number };

export const NODE_SIZE: Size = { width: 168, height: 64, gapX: 36, gapY: 16 };

/**
 * Each step's column and row. Needs that name no step are left out; a cycle (which the
 * server refuses) cannot hang it: a step met again while its own column is being worked out
 * counts as a root there.
 */
export function layoutSteps(steps: readonly GraphStep[]): Map<string, Placement> {
	const byId = new Map(steps.map((step) => [step.id, step]));
	const column = new Map<string, number>();
	const visiting = new Set<string>();

	function depth(id: string): number {
		const known = column.get(id);
		if (known !== undefined) return known;
		if (visiting.has(id)) return 0;
		visiting.add(id);
		let deepest = -1;
		for (const need of byId.get(id)?.needs ?? []) if (byId.has(need)) deepest = Math.max(deepest, depth(need));
		visiting.delete(id);
		column.set(id, deepest + 1);
		return deepest + 1;
	}

	const rows = new Map<number, number>();
	const placed = new Map<string, Placement>();
	for (const step of steps) {
		if (placed.has(step.id)) continue;
		const col = depth(step.id);
		const row = rows.get(col) ?? 0;
		rows.set(col, row + 1);
		placed.set(step.id, { column: col, row });
	}
	return placed;
}

/** Where each step's node goes: columns left to right, each column centred on the same line. */
export function nodePositions(layout: Map<string, Placement>, size: Size = NODE_SIZE): Map<string, { x: number; y: number }> {
	const perColumn = new Map<number, number>();
	for (const { column } of layout.values()) perColumn.set(column, (perColumn.get(column) ?? 0) + 1);
	const tallest = tallestColumn(layout);
	const positions = new Map<string, { x: number; y: number }>();
	for (const [id, { column, row }] of layout) {
		const offset = (tallest - (perColumn.get(column) ?? 1)) / 2;
		positions.set(id, { x: column * (size.width + size.gapX), y: (row + offset) * (size.height + size.gapY) });
	}
	return positions;
}

/** How many steps the fullest column holds (the graph's height in rows). */
export function tallestColumn(layout: Map<string, Placement>): number {
	const perColumn = new Map<number, number>();
	for (const { column } of layout.values()) perColumn.set(column, (perColumn.get(column) ?? 0) + 1);
	return Math.max(0, ...perColumn.values());
}

/** The edges of the graph: from each step a step needs to that step. */
export function stepEdges(steps: readonly GraphStep[]): { id: string; source: string; target: string }[] {
	const ids = new Set(steps.map((step) => step.id));
	return steps.flatMap((step) =>
		step.needs.filter((need) => ids.has(need)).map((need) => ({ id: `${need}->${step.id}`, source: need, target: step.id }))
	);
}

/** What a step's node shows as its state (its colour). */
export type StepState = 'done' | 'needs_you' | 'running' | 'stalled' | 'blocked' | 'waiting' | 'deleted';

const FINISHED_BADLY = new Set(['failed', 'cancelled', 'interrupted']);

export function stepState(step: Pick<WorkflowStep, 'task_id' | 'status' | 'run_status' | 'blocked'>): StepState {
	if (step.task_id == null) return 'deleted';
	if (step.status === 'done') return 'done';
	if (step.status === 'needs_review' || step.run_status === 'waiting_approval') return 'needs_you';
	if (step.status === 'in_progress' || step.run_status === 'queued' || step.run_status === 'running') return 'running';
	if (step.status === 'todo' && step.run_status != null && FINISHED_BADLY.has(step.run_status)) return 'stalled';
	if (step.blocked) return 'blocked';
	return 'waiting';
}

export const STEP_STATE_TITLES: Record<StepState, string> = {
	done: 'Done',
	needs_you: 'Needs you',
	running: 'Running',
	stalled: 'Stalled',
	blocked: 'Waiting for its steps',
	waiting: 'Waiting',
	deleted: 'Card deleted'
};
