import { ApiError, errorMessage, type Api } from '$lib/api/client';
import type { BoardTask, Task, TaskMove, TaskStatus } from '$lib/api/types';
import { matchesQuery, type BoardCards, type Place } from './columns.svelte';

/** What moves need of the board they move cards on. */
export type MoveHost = {
	readonly cards: BoardCards;
	readonly query: string;
	readonly api: Api;
	notify(message: string): void;
	isDeleted(id: number): boolean;
	/** Insert or replace a task at its position (false if it was stale). */
	upsert(task: Task | BoardTask): boolean;
	/** Apply the live events that waited for the drag to end. */
	flush(): void;
	/** Show the task as it is now (from a 409's `current`, else fetched). */
	refreshTask(id: number, body: unknown): Promise<void>;
	/** Start the task's agent run, as Run does: null once started, else why it cannot start. */
	startRun(task: BoardTask): Promise<string | null>;
};

/**
 * Dropping a card on Running means "work on this now": its agent run starts, as Run does. Not for
 * a workflow's card (its steps run) nor an approval step (a person answers it): those just move.
 */
export function startsOnDrop(task: BoardTask, status: TaskStatus): boolean {
	return (
		status === 'in_progress' &&
		task.status !== 'in_progress' &&
		task.workflow_step_kind !== 'approval' &&
		!(task.workflow_id != null && task.workflow_step == null)
	);
}

/**
 * Drag and drop, and optimistic moves: a move is shown at once, sent with the neighbour the
 * card was dropped next to and the version the user saw, and put back when the server refuses.
 */
export class BoardMoves {
	/** A drag is in progress: live events wait until it ends, so they don't fight the drag library. */
	dragging = $state(false);
	/** A keyboard drag (Space … Space) is in progress; Tab then moves the card between columns. */
	keyboardDragging = $state(false);

	#host: MoveHost;
	#dragOrigin: Place | null = null;
	#moves: Promise<unknown> = Promise.resolve();
	/** A keyboard drag that carried a card onto Running: its run starts when the drag ends there. */
	#heldOnRunning: BoardTask | null = null;
	/** Escape ends the keyboard drag now in progress: a card held on Running goes back, no run starts. */
	escaping = false;
	#inflight = new Map<number, number>();
	#ownVersions = new Map<number, number>();

	constructor(host: MoveHost) {
		this.#host = host;
	}

	/** A version this client's own write produced: later moves of the task start from it. */
	noteOwnVersion(id: number, version: number) {
		this.#ownVersions.set(id, version);
	}

	/** Another board: forget the versions of this one. */
	reset() {
		this.#ownVersions.clear();
	}

	/** The drag library reports an in-progress reorder: show it, and remember where the card came from. */
	dragConsider = (status: TaskStatus, items: BoardTask[], draggedId: number | null) => {
		if (!this.dragging && draggedId != null) {
			const origin = this.#host.cards.find(draggedId);
			if (origin) this.#dragOrigin = { task: { ...origin.task }, status: origin.status, index: origin.index };
			this.dragging = true;
		}
		this.#host.cards.setList(status, items);
	};

	/**
	 * The drag ended (or, for a keyboard drag, took one step). `finalize` fires for every zone the
	 * card touched; the zone that now holds the card persists the move.
	 */
	dragFinalize = async (status: TaskStatus, items: BoardTask[], draggedId: number): Promise<boolean> => {
		const cards = this.#host.cards;
		cards.setList(status, items);
		const index = items.findIndex((t) => t.id === draggedId);
		if (index === -1) return false; // the source zone; the target zone handles the move
		const origin = this.#dragOrigin;
		this.#dragOrigin = null;
		this.dragging = false;
		if (origin && origin.status === status && origin.index === index) {
			cards.replaceAt(status, index, origin.task);
			this.#host.flush();
			return false;
		}
		// Without an origin this is a further keyboard step: the card carries its previous place.
		const held = this.#heldOnRunning?.id === draggedId ? this.#heldOnRunning : null;
		this.#heldOnRunning = null;
		const before = held ?? origin?.task ?? { ...(cards.card(draggedId) ?? items[index]) };
		if (startsOnDrop(before, status)) {
			if (!this.keyboardDragging) return this.#start(before, index);
			// A keyboard drag may only pass through Running: the run starts if the drag ends here.
			this.#heldOnRunning = before;
			this.#host.flush();
			return false;
		}
		return this.#persist(before, status, index);
	};

	/** A keyboard drag ended. If no step was taken, the card is where it was: nothing to send. */
	dragStopped = (status: TaskStatus, items: BoardTask[]) => {
		const cards = this.#host.cards;
		cards.setList(status, items);
		this.keyboardDragging = false;
		const held = this.#heldOnRunning;
		const escaped = this.escaping;
		this.#heldOnRunning = null;
		this.escaping = false;
		if (held && !this.dragging) {
			const index = cards.lists.in_progress.findIndex((t) => t.id === held.id);
			if (escaped) this.#rollback(held);
			else if (index !== -1) void this.#start(held, index);
			this.#host.flush();
			return;
		}
		if (!this.dragging) return;
		this.dragging = false;
		const origin = this.#dragOrigin;
		this.#dragOrigin = null;
		if (origin) {
			const index = cards.lists[origin.status].findIndex((t) => t.id === origin.task.id);
			if (index !== -1) cards.replaceAt(origin.status, index, origin.task);
		}
		this.#host.flush();
	};

	/** Move a task to `status` at `index` (0-based among the column's other tasks), optimistically. */
	move = async (taskId: number, status: TaskStatus, index?: number): Promise<boolean> => {
		const cards = this.#host.cards;
		const origin = cards.find(taskId);
		if (!origin) return false;
		const before = { ...origin.task };
		cards.removeAt(origin.status, origin.index);
		const length = cards.lists[status].length;
		const at = index == null ? length : Math.max(0, Math.min(index, length));
		cards.insertAt(status, at, { ...before, status });
		return this.#persist(before, status, at);
	};

	/**
	 * Send a move that is already shown. The neighbours are fixed now, at the time of the user's
	 * action; requests go out one at a time so consecutive moves of one card don't race each other.
	 */
	#persist(before: BoardTask, status: TaskStatus, index: number): Promise<boolean> {
		const host = this.#host;
		const cards = host.cards;
		const shown = { ...before, status };
		cards.replaceAt(status, index, shown);
		cards.put(shown);
		const column = cards.lists[status];
		const prev = column[index - 1];
		const next = column[index + 1];
		const anchor: Pick<TaskMove, 'after_id' | 'before_id'> = prev
			? { after_id: prev.id }
			: next
				? { before_id: next.id }
				: {};
		this.#inflight.set(before.id, (this.#inflight.get(before.id) ?? 0) + 1);
		host.flush();

		const run = async (): Promise<boolean> => {
			const remaining = (this.#inflight.get(before.id) ?? 1) - 1;
			if (remaining > 0) this.#inflight.set(before.id, remaining);
			else this.#inflight.delete(before.id);
			if (host.isDeleted(before.id)) return false;
			// The version the user saw, or the one our own previous move of this card produced.
			const version = Math.max(before.version, this.#ownVersions.get(before.id) ?? 0);
			try {
				const moved = await host.api.moveTask(before.id, { status, ...anchor, version });
				this.#ownVersions.set(before.id, moved.version);
				if (this.#inflight.has(before.id)) {
					// Another move of this card is queued: keep showing it where the user put it.
					const held = cards.find(before.id);
					if (held && held.task.version < moved.version) {
						cards.put({ ...held.task, version: moved.version, position: moved.position });
					}
				} else {
					host.upsert(moved);
				}
				return true;
			} catch (err) {
				this.#rollback(before);
				host.notify(`Couldn't move ${before.short_id}: ${errorMessage(err)}`);
				if (err instanceof ApiError && err.status === 409) await host.refreshTask(before.id, err.body);
				return false;
			}
		};
		const result = this.#moves.then(run, run);
		this.#moves = result.catch(() => false);
		return result;
	}

	/**
	 * A card dropped on Running at `index`: shown there at once while its run is asked for; the
	 * server moves it when the run is queued. A run that cannot start puts the card back, saying why.
	 */
	#start(before: BoardTask, index: number): Promise<boolean> {
		const host = this.#host;
		const cards = host.cards;
		const shown = { ...before, status: 'in_progress' as const };
		cards.replaceAt('in_progress', index, shown);
		cards.put(shown);
		host.flush();
		const run = async (): Promise<boolean> => {
			if (host.isDeleted(before.id)) return false;
			const refusal = await host.startRun(before);
			if (refusal == null) return true;
			this.#rollback(before);
			host.notify(`Couldn't start ${before.short_id}: ${refusal}`);
			return false;
		};
		const result = this.#moves.then(run, run);
		this.#moves = result.catch(() => false);
		return result;
	}

	/** Put a task back where it was, unless the server has since told us a newer version. */
	#rollback(before: BoardTask) {
		const cards = this.#host.cards;
		const current = cards.find(before.id);
		if (!current) return; // deleted meanwhile
		if (current.task.version > before.version) return;
		cards.removeAt(current.status, current.index);
		if (this.#host.query && !matchesQuery(before, this.#host.query)) {
			cards.forget(before.id);
			return;
		}
		cards.put(before);
		cards.insertSorted(before.status as TaskStatus, before);
	}
}
