/**
 * Task dependencies as the board shows them: what blocks a card, the badge and its tooltip,
 * which tasks the picker offers, and whether a task event with the same version is news.
 */
import { STATUS_TITLES, type Blocker, type BoardTask, type TaskStatus } from '$lib/api/types';

type Linked = Pick<BoardTask, 'id' | 'blocked' | 'blocked_by'>;

/** The predecessors that still block the task, in link order. */
export function openBlockers(task: Pick<BoardTask, 'blocked_by'>): Blocker[] {
	return (task.blocked_by ?? []).filter((b) => b.blocking);
}

/** "Blocked by KAN-3", "Blocked by KAN-3 +2", or null when nothing blocks the task. */
export function blockedBadge(task: Pick<BoardTask, 'blocked_by'>): string | null {
	const open = openBlockers(task);
	if (!open.length) return null;
	return `Blocked by ${open[0].short_id}${open.length > 1 ? ` +${open.length - 1}` : ''}`;
}

/** Every reason the task is blocked, one per line (the badge's tooltip, the disabled Run's title). */
export function blockedReasons(task: Pick<BoardTask, 'blocked_by'>): string {
	return openBlockers(task)
		.map((b) => b.reason ?? b.short_id)
		.join('\n');
}

/** What a blocker's state reads as in the picker: its reason, or "done". */
export function blockerState(blocker: Blocker): string {
	return blocker.blocking ? (blocker.reason ?? 'blocking') : 'done';
}

/** Tasks the picker offers: the board's other tasks not linked yet, in board order. */
export function dependencyCandidates(tasks: readonly BoardTask[], task: Linked): BoardTask[] {
	const linked = new Set(task.blocked_by.map((b) => b.task_id));
	return tasks.filter((t) => t.id !== task.id && !linked.has(t.id));
}

/** The ids `PATCH blocked_by` takes after adding or removing one (links to deleted tasks drop out). */
export function withBlocker(task: Pick<BoardTask, 'blocked_by'>, id: number): number[] {
	const ids = liveIds(task);
	return ids.includes(id) ? ids : [...ids, id];
}

export function withoutBlocker(task: Pick<BoardTask, 'blocked_by'>, blocker: Blocker): number[] {
	return liveIds(task).filter((id) => id !== blocker.task_id);
}

function liveIds(task: Pick<BoardTask, 'blocked_by'>): number[] {
	return task.blocked_by.flatMap((b) => (b.task_id == null ? [] : [b.task_id]));
}

/**
 * Is `incoming` news for a held task? A newer version is; so is the same version with other
 * blockers (a predecessor changed: the dependent's row, and so its version, did not).
 */
export function isNewer(held: Linked & { version: number }, incoming: Linked & { version: number }): boolean {
	if (incoming.version !== held.version) return incoming.version > held.version;
	return (
		incoming.blocked !== held.blocked || JSON.stringify(incoming.blocked_by) !== JSON.stringify(held.blocked_by)
	);
}

/**
 * A card as the blocker it would be (the new-task form, before the server says): the same
 * reasons the server gives for a column; run states it tells once saved.
 */
export function asBlocker(card: BoardTask): Blocker {
	const blocking = card.status !== 'done';
	return {
		task_id: card.id,
		short_id: card.short_id,
		title: card.title,
		status: card.status,
		run_status: null,
		blocking,
		reason: blocking ? `${card.short_id} is in ${STATUS_TITLES[card.status as TaskStatus]}` : null
	};
}
