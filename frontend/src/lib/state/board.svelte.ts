import { SvelteMap } from 'svelte/reactivity';
import { toast } from 'svelte-sonner';
import { api as defaultApi, ApiError, errorMessage, type Api } from '$lib/api/client';
import {
	STATUSES,
	type BoardEvent,
	type BoardTask,
	type Project,
	type RunSummary,
	type Task,
	type TaskCreate,
	type TaskMove,
	type TaskStatus,
	type TaskUpdate
} from '$lib/api/types';

export type Columns = Record<TaskStatus, BoardTask[]>;

type Deps = {
	api?: Api;
	notify?: (message: string) => void;
};

export function emptyColumns(): Columns {
	return { todo: [], in_progress: [], needs_review: [], done: [] };
}

function withContent(lists: Columns, cards: Map<number, BoardTask>): Columns {
	const columns = emptyColumns();
	for (const status of STATUSES) columns[status] = lists[status].map((t) => cards.get(t.id) ?? t);
	return columns;
}

/** Board order: by fractional position (plain code-unit comparison, like SQL's binary collation), then id. */
export function compareTasks(a: Pick<BoardTask, 'position' | 'id'>, b: Pick<BoardTask, 'position' | 'id'>) {
	if (a.position < b.position) return -1;
	if (a.position > b.position) return 1;
	return a.id - b.id;
}

/** Strip the fields the board does not carry (description, result). */
export function toBoardTask(task: Task | BoardTask): BoardTask {
	const { description: _d, result: _r, ...rest } = task as Task;
	return { ...rest, labels: [...(rest.labels ?? [])] };
}

/** Client-side approximation of the server's `q` filter, used for live events while a search is active. */
export function matchesQuery(task: Task | BoardTask, q: string): boolean {
	const needle = q.trim().toLowerCase();
	if (!needle) return true;
	const description = 'description' in task ? (task.description ?? '') : '';
	return (
		task.title.toLowerCase().includes(needle) ||
		description.toLowerCase().includes(needle) ||
		task.short_id.toLowerCase() === needle
	);
}

function isStatus(value: unknown): value is TaskStatus {
	return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

/**
 * State of one project's board: columns of tasks, the task open in the sidebar, and the rules
 * for applying live events and optimistic moves.
 */
export class BoardState {
	projectId = $state<number | null>(null);
	project = $state<Project | null>(null);
	/**
	 * Each column's cards in board order. The arrays are replaced, never mutated, and only when
	 * the order changes: the keyed lists and the drag library then reconcile only on moves.
	 */
	lists = $state.raw<Columns>(emptyColumns());
	/** The newest content of every card, by id: an edit re-renders that one card. */
	#cards = new SvelteMap<number, BoardTask>();
	/** The columns with each card's newest content. */
	columns = $derived<Columns>(withContent(this.lists, this.#cards));
	/** Full task (with description/result) shown in the sidebar. */
	detail = $state<Task | null>(null);
	detailId = $state<number | null>(null);
	detailError = $state<string | null>(null);
	query = $state('');
	loading = $state(false);
	loaded = $state(false);
	error = $state<string | null>(null);
	/** A drag is in progress: live events wait until it ends, so they don't fight the drag library. */
	dragging = $state(false);
	/** A keyboard drag (Space … Space) is in progress; Tab then moves the card between columns. */
	keyboardDragging = $state(false);

	#api: Api;
	#notify: (message: string) => void;
	#queue: BoardEvent[] = [];
	#deleted = new Set<number>();
	#loadSeq = 0;
	#loadingNow = false;
	#dragOrigin: { task: BoardTask; status: TaskStatus; index: number } | null = null;
	#moves: Promise<unknown> = Promise.resolve();
	#inflight = new Map<number, number>();
	#ownVersions = new Map<number, number>();

	constructor(deps: Deps = {}) {
		this.#api = deps.api ?? defaultApi;
		this.#notify = deps.notify ?? ((message) => toast.error(message));
	}

	get total(): number {
		return STATUSES.reduce((n, s) => n + this.lists[s].length, 0);
	}

	count = (status: TaskStatus): number => this.lists[status].length;

	/** The newest content of a card (undefined for the drag library's placeholder). */
	card = (id: number): BoardTask | undefined => this.#cards.get(id);

	find = (id: number): { task: BoardTask; status: TaskStatus; index: number } | null => {
		for (const status of STATUSES) {
			const index = this.lists[status].findIndex((t) => t.id === id);
			if (index !== -1) return { task: this.#cards.get(id) ?? this.lists[status][index], status, index };
		}
		return null;
	};

	findByShortId = (shortId: string): BoardTask | null => {
		for (const card of this.#cards.values()) if (card.short_id === shortId) return card;
		return null;
	};

	#setList(status: TaskStatus, list: BoardTask[]) {
		this.lists = { ...this.lists, [status]: list };
	}

	#removeAt(status: TaskStatus, index: number) {
		const list = this.lists[status];
		this.#setList(status, [...list.slice(0, index), ...list.slice(index + 1)]);
	}

	#insertAt(status: TaskStatus, index: number, card: BoardTask) {
		const list = this.lists[status];
		this.#setList(status, [...list.slice(0, index), card, ...list.slice(index)]);
	}

	#replaceAt(status: TaskStatus, index: number, card: BoardTask) {
		const list = this.lists[status].slice();
		list[index] = card;
		this.#setList(status, list);
	}

	#put(card: BoardTask) {
		this.#cards.set(card.id, card);
	}

	#clear() {
		this.lists = emptyColumns();
		this.#cards.clear();
	}

	/** Load (or reload) the board. Events arriving meanwhile are queued and applied afterwards. */
	load = async (projectId: number, q: string = this.query): Promise<void> => {
		const seq = ++this.#loadSeq;
		if (projectId !== this.projectId) {
			this.projectId = projectId;
			this.project = null;
			this.#clear();
			this.loaded = false;
			this.#deleted.clear();
			this.#ownVersions.clear();
			this.#queue = [];
			this.closeTask();
		}
		this.query = q;
		this.loading = true;
		this.#loadingNow = true;
		try {
			const board = await this.#api.getBoard(projectId, q || undefined);
			if (seq !== this.#loadSeq) return;
			const lists = emptyColumns();
			for (const column of board.columns) {
				if (isStatus(column.status)) lists[column.status] = column.tasks.map(toBoardTask);
			}
			this.project = board.project;
			this.#cards.clear();
			for (const status of STATUSES) for (const card of lists[status]) this.#put(card);
			this.lists = lists;
			this.error = null;
			this.loaded = true;
		} catch (err) {
			if (seq !== this.#loadSeq) return;
			this.error = errorMessage(err);
		} finally {
			if (seq === this.#loadSeq) {
				this.loading = false;
				this.#loadingNow = false;
				this.#flush();
			}
		}
	};

	reset = () => {
		this.#loadSeq++;
		this.projectId = null;
		this.project = null;
		this.#clear();
		this.loaded = false;
		this.loading = false;
		this.#loadingNow = false;
		this.error = null;
		this.#queue = [];
		this.#deleted.clear();
		this.closeTask();
	};

	/**
	 * Apply one live event. Idempotent: an event about a task version older than (or equal to)
	 * the one held is ignored, and deleted tasks stay deleted.
	 */
	applyEvent = (event: BoardEvent): void => {
		if (this.dragging || this.#loadingNow) {
			this.#queue.push(event);
			return;
		}
		switch (event.type) {
			case 'task.created':
			case 'task.updated':
			case 'task.moved':
				if (event.payload.project_id !== this.projectId) return;
				this.upsert(event.payload);
				return;
			case 'task.deleted':
				if (event.payload.project_id !== this.projectId) return;
				this.remove(event.payload.id);
				return;
			case 'project.updated':
				if (event.payload.id === this.projectId) this.project = event.payload;
				return;
			case 'run.queued':
			case 'run.started':
			case 'run.updated':
			case 'run.finished':
				if (event.payload.project_id !== this.projectId) return;
				this.#applyRun(event.payload);
				return;
			default:
				return;
		}
	};

	#flush() {
		if (this.dragging || this.#loadingNow) return;
		const queued = this.#queue;
		this.#queue = [];
		for (const event of queued) this.applyEvent(event);
	}

	/** Insert or replace a task in its column at its position. Returns false if it was stale. */
	upsert = (task: Task | BoardTask): boolean => {
		if (this.#deleted.has(task.id)) return false;
		const existing = this.find(task.id);
		if (existing && existing.task.version >= task.version) return false;
		if ('description' in task) this.#updateDetail(task);
		else if (this.detail?.id === task.id && this.detail.version < task.version) {
			this.detail = { ...this.detail, ...task };
		}
		const card = toBoardTask(task);
		if (card.run === undefined && existing?.task.run) card.run = existing.task.run;
		const visible = isStatus(task.status) && (!this.query || matchesQuery(task, this.query));
		if (existing && visible && existing.status === task.status && existing.task.position === task.position) {
			this.#put(card); // same place: only the card's content changes
			return true;
		}
		if (existing) this.#removeAt(existing.status, existing.index);
		if (!visible) {
			this.#cards.delete(task.id);
			return true;
		}
		this.#put(card);
		this.#insertSorted(card.status as TaskStatus, card);
		return true;
	};

	/** Show a task's newest run on its card (an older run's news never replaces a newer run). */
	#applyRun(run: RunSummary) {
		const held = this.find(run.task_id);
		if (!held) return;
		const current = held.task.run;
		if (current && current.id > run.id) return;
		this.#put({ ...held.task, run });
	}

	remove = (id: number): void => {
		this.#deleted.add(id);
		const existing = this.find(id);
		if (existing) this.#removeAt(existing.status, existing.index);
		this.#cards.delete(id);
		if (this.detailId === id) this.closeTask();
	};

	#insertSorted(status: TaskStatus, task: BoardTask) {
		const list = this.lists[status];
		let index = list.findIndex((t) => compareTasks(this.#cards.get(t.id) ?? t, task) > 0);
		if (index === -1) index = list.length;
		this.#insertAt(status, index, task);
	}

	#updateDetail(task: Task) {
		if (this.detailId === task.id && (!this.detail || this.detail.version < task.version)) {
			this.detail = task;
		}
	}

	// ---- drag and drop ------------------------------------------------------------------

	/** The drag library reports an in-progress reorder: show it, and remember where the card came from. */
	dragConsider = (status: TaskStatus, items: BoardTask[], draggedId: number | null) => {
		if (!this.dragging && draggedId != null) {
			const origin = this.find(draggedId);
			if (origin) this.#dragOrigin = { task: { ...origin.task }, status: origin.status, index: origin.index };
			this.dragging = true;
		}
		this.#setList(status, items);
	};

	/**
	 * The drag ended (or, for a keyboard drag, took one step). `finalize` fires for every zone the
	 * card touched; the zone that now holds the card persists the move.
	 */
	dragFinalize = async (status: TaskStatus, items: BoardTask[], draggedId: number): Promise<boolean> => {
		this.#setList(status, items);
		const index = items.findIndex((t) => t.id === draggedId);
		if (index === -1) return false; // the source zone; the target zone handles the move
		const origin = this.#dragOrigin;
		this.#dragOrigin = null;
		this.dragging = false;
		if (origin && origin.status === status && origin.index === index) {
			this.#replaceAt(status, index, origin.task);
			this.#flush();
			return false;
		}
		// Without an origin this is a further keyboard step: the card carries its previous place.
		const before = origin?.task ?? { ...(this.#cards.get(draggedId) ?? items[index]) };
		return this.#persistMove(before, status, index);
	};

	/** A keyboard drag ended. If no step was taken, the card is where it was: nothing to send. */
	dragStopped = (status: TaskStatus, items: BoardTask[]) => {
		this.#setList(status, items);
		this.keyboardDragging = false;
		if (!this.dragging) return;
		this.dragging = false;
		const origin = this.#dragOrigin;
		this.#dragOrigin = null;
		if (origin) {
			const index = this.lists[origin.status].findIndex((t) => t.id === origin.task.id);
			if (index !== -1) this.#replaceAt(origin.status, index, origin.task);
		}
		this.#flush();
	};

	/** Move a task to `status` at `index` (0-based among the column's other tasks), optimistically. */
	move = async (taskId: number, status: TaskStatus, index?: number): Promise<boolean> => {
		const origin = this.find(taskId);
		if (!origin) return false;
		const before = { ...origin.task };
		this.#removeAt(origin.status, origin.index);
		const length = this.lists[status].length;
		const at = index == null ? length : Math.max(0, Math.min(index, length));
		this.#insertAt(status, at, { ...before, status });
		return this.#persistMove(before, status, at);
	};

	/**
	 * Send a move that is already shown. The neighbours are fixed now, at the time of the user's
	 * action; requests go out one at a time so consecutive moves of one card don't race each other.
	 */
	#persistMove(before: BoardTask, status: TaskStatus, index: number): Promise<boolean> {
		const shown = { ...before, status };
		this.#replaceAt(status, index, shown);
		this.#put(shown);
		const column = this.lists[status];
		const prev = column[index - 1];
		const next = column[index + 1];
		const anchor: Pick<TaskMove, 'after_id' | 'before_id'> = prev
			? { after_id: prev.id }
			: next
				? { before_id: next.id }
				: {};
		this.#inflight.set(before.id, (this.#inflight.get(before.id) ?? 0) + 1);
		this.#flush();

		const run = async (): Promise<boolean> => {
			const remaining = (this.#inflight.get(before.id) ?? 1) - 1;
			if (remaining > 0) this.#inflight.set(before.id, remaining);
			else this.#inflight.delete(before.id);
			if (this.#deleted.has(before.id)) return false;
			// The version the user saw, or the one our own previous move of this card produced.
			const version = Math.max(before.version, this.#ownVersions.get(before.id) ?? 0);
			try {
				const moved = await this.#api.moveTask(before.id, { status, ...anchor, version });
				this.#ownVersions.set(before.id, moved.version);
				if (this.#inflight.has(before.id)) {
					// Another move of this card is queued: keep showing it where the user put it.
					const held = this.find(before.id);
					if (held && held.task.version < moved.version) {
						this.#put({ ...held.task, version: moved.version, position: moved.position });
					}
				} else {
					this.upsert(moved);
				}
				return true;
			} catch (err) {
				this.#rollback(before);
				const detail = errorMessage(err);
				this.#notify(`Couldn't move ${before.short_id}: ${detail}`);
				if (err instanceof ApiError && err.status === 409) await this.#refreshTask(before.id, err.body);
				return false;
			}
		};
		const result = this.#moves.then(run, run);
		this.#moves = result.catch(() => false);
		return result;
	}

	/** Put a task back where it was, unless the server has since told us a newer version. */
	#rollback(before: BoardTask) {
		const current = this.find(before.id);
		if (!current) return; // deleted meanwhile
		if (current.task.version > before.version) return;
		this.#removeAt(current.status, current.index);
		if (this.query && !matchesQuery(before, this.query)) {
			this.#cards.delete(before.id);
			return;
		}
		this.#put(before);
		this.#insertSorted(before.status as TaskStatus, before);
	}

	async #refreshTask(id: number, body: unknown) {
		let current: Task | null = null;
		if (body && typeof body === 'object' && 'current' in body) {
			current = (body as { current: Task | null }).current ?? null;
		}
		if (!current || !('version' in current) || !('status' in current)) {
			try {
				current = (await this.#api.getTask(id)) ?? null;
			} catch {
				current = null;
			}
		}
		if (current) this.upsert(current);
	}

	// ---- CRUD ---------------------------------------------------------------------------

	createTask = async (input: Omit<TaskCreate, 'project_id'>): Promise<Task> => {
		if (this.projectId == null) throw new Error('No project selected');
		const task = await this.#api.createTask({ ...input, project_id: this.projectId });
		this.upsert(task);
		return task;
	};

	/**
	 * PATCH with `baseVersion` (the version the user edited) or else the version we hold; a 409
	 * refreshes the task and rethrows for the caller to show.
	 */
	updateTask = async (id: number, changes: Omit<TaskUpdate, 'version'>, baseVersion?: number): Promise<Task> => {
		const version =
			baseVersion ?? (this.detail?.id === id ? this.detail.version : this.find(id)?.task.version);
		if (version == null) throw new Error('Unknown task');
		try {
			const task = await this.#api.updateTask(id, { ...changes, version });
			this.#ownVersions.set(id, task.version);
			this.upsert(task);
			this.#updateDetail(task);
			return task;
		} catch (err) {
			if (err instanceof ApiError && err.status === 409) await this.#refreshTask(id, err.body);
			throw err;
		}
	};

	deleteTask = async (id: number): Promise<void> => {
		await this.#api.deleteTask(id);
		this.remove(id);
	};

	// ---- sidebar ------------------------------------------------------------------------

	openTask = async (id: number): Promise<void> => {
		if (this.detailId === id && this.detail) return;
		this.detailId = id;
		this.detailError = null;
		if (this.detail?.id !== id) this.detail = null;
		try {
			const task = await this.#api.getTask(id);
			if (this.detailId !== id) return;
			this.detail = task;
			const held = this.find(id);
			if (!held || held.task.version < task.version) this.upsert(task);
		} catch (err) {
			if (this.detailId !== id) return;
			this.detailError = errorMessage(err);
		}
	};

	closeTask = () => {
		this.detailId = null;
		this.detail = null;
		this.detailError = null;
	};
}

export const board = new BoardState();
