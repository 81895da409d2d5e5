import { isNewer } from '$lib/dependencies';
import { toast } from 'svelte-sonner';
import { api as defaultApi, ApiError, errorMessage, type Api } from '$lib/api/client';
import {
	STATUSES,
	type Board,
	type BoardEvent,
	type BoardTask,
	type Project,
	type RunSummary,
	type Task,
	type TaskCreate,
	type TaskStatus,
	type TaskUpdate
} from '$lib/api/types';
import { hasFilters, matchesFilters, mergeShown, NO_FILTERS, type BoardFilters } from '$lib/filters';
import { BoardCards, emptyColumns, isStatus, matchesQuery, toBoardTask, type Columns } from './columns.svelte';
import { BoardMoves } from './moves.svelte';
import { TaskDetail } from './task-detail.svelte';

export { compareTasks, emptyColumns, matchesQuery, toBoardTask, type Columns } from './columns.svelte';

const NO_STEPS: BoardTask[] = [];

type Deps = {
	api?: Api;
	notify?: (message: string) => void;
};

type EarlyBoard = { projectId: number; q: string; response: Promise<Response> };

/**
 * The board app.html asked for before the app's script ran, when it is the one wanted: its
 * JSON on success; null on anything else (the app asks again, and reports what fails).
 */
function takeEarlyBoard(projectId: number, q: string): Promise<Board | null> | null {
	const holder = globalThis as { __kanbanBoard?: EarlyBoard };
	const early = holder.__kanbanBoard;
	delete holder.__kanbanBoard;
	if (!early || early.projectId !== projectId || early.q !== q) return null;
	return early.response.then(
		(response) => (response.ok ? (response.json() as Promise<Board>) : null),
		() => null
	);
}

/**
 * State of one project's board: loading it, applying live events, and the CRUD calls. The
 * cards live in `BoardCards` (columns.svelte.ts), drag and drop and optimistic moves in
 * `BoardMoves` (moves.svelte.ts), the task open in the sidebar in `TaskDetail`.
 */
export class BoardState {
	projectId = $state<number | null>(null);
	project = $state<Project | null>(null);
	query = $state('');
	loading = $state(false);
	loaded = $state(false);
	error = $state<string | null>(null);
	/** The newest board event the first snapshot of this project reflected (live news comes after it). */
	snapshotEventId = $state<number | null>(null);
	/** Board snapshots loaded so far (each load that succeeded counts one). */
	snapshots = $state(0);
	/** The filters of the URL: cards that do not match stay loaded but are not shown. */
	filters = $state.raw<BoardFilters>(NO_FILTERS);
	/** The event cursor of the snapshot shown: the live stream starts after it. */
	lastEventId: number | null = null;

	readonly cards = new BoardCards();
	readonly moves: BoardMoves;
	readonly task: TaskDetail;

	readonly api: Api;
	#notify: (message: string) => void;
	#queue: BoardEvent[] = [];
	#deleted = new Set<number>();
	#loadSeq = 0;
	#loadingNow = false;
	#prefetched: { projectId: number; q: string; board: Promise<Board> } | null = null;

	constructor(deps: Deps = {}) {
		this.api = deps.api ?? defaultApi;
		this.#notify = deps.notify ?? ((message) => toast.error(message));
		this.moves = new BoardMoves(this);
		this.task = new TaskDetail(this.api, (task) => {
			const held = this.find(task.id);
			if (!held || isNewer(held.task, task)) this.upsert(task);
		});
	}

	// ---- the cards (BoardCards) ------------------------------------------------------------

	/** Each column's cards in board order (replaced, never mutated, when the order changes). */
	get lists(): Columns {
		return this.cards.lists;
	}

	/** The columns with each card's newest content. */
	get columns(): Columns {
		return this.cards.columns;
	}

	get total(): number {
		return this.cards.total;
	}

	get filtering(): boolean {
		return hasFilters(this.filters);
	}

	/** Each column's cards the filters let through, in board order (`lists` itself without filters). */
	get shown(): Columns {
		return this.#shown;
	}

	/** Cards loaded (they match the search) that the filters hide. */
	get hiddenCount(): number {
		return this.total - STATUSES.reduce((n, s) => n + this.#shown[s].length, 0);
	}

	/** Whether the filters hide this card (its newest content decides). */
	isHidden = (task: BoardTask): boolean => !matchesFilters(this.card(task.id) ?? task, this.filters);

	/**
	 * A column's full order from the order of its shown cards (what the drag library reports
	 * while filters hide some): the hidden cards keep their places.
	 */
	withHidden = (status: TaskStatus, shown: BoardTask[], movedId: number | null = null): BoardTask[] =>
		this.filtering ? mergeShown(this.lists[status], shown, this.isHidden, movedId) : shown;

	#previousShown: Columns = emptyColumns();
	#shown = $derived.by((): Columns => {
		const lists = this.cards.lists;
		if (!hasFilters(this.filters)) return lists;
		const shown = emptyColumns();
		for (const status of STATUSES) {
			const list = lists[status].filter((t) => !this.isHidden(t));
			const before = this.#previousShown[status];
			const same = before.length === list.length && list.every((t, i) => before[i] === t);
			shown[status] = same ? before : list; // unchanged columns keep their array: no re-render
		}
		this.#previousShown = shown;
		return shown;
	});

	count = (status: TaskStatus) => this.cards.count(status);
	card = (id: number) => this.cards.card(id);
	find = (id: number) => this.cards.find(id);
	findByShortId = (shortId: string) => this.cards.findByShortId(shortId);
	/** The card whose newest run this is. */
	findByRun = (runId: number) => this.cards.findByRun(runId);
	/** A workflow's step cards on the board (its card's progress comes from them). */
	workflowSteps = (workflowId: number): BoardTask[] => this.cards.workflows.get(workflowId)?.steps ?? NO_STEPS;
	/** A workflow's own card, when it is on the board. */
	workflowCard = (workflowId: number): BoardTask | null => this.cards.workflows.get(workflowId)?.card ?? null;

	// ---- moves (BoardMoves) -----------------------------------------------------------------

	get dragging(): boolean {
		return this.moves.dragging;
	}

	get keyboardDragging(): boolean {
		return this.moves.keyboardDragging;
	}

	set keyboardDragging(value: boolean) {
		this.moves.keyboardDragging = value;
	}

	get dragConsider() {
		return this.moves.dragConsider;
	}

	get dragFinalize() {
		return this.moves.dragFinalize;
	}

	get dragStopped() {
		return this.moves.dragStopped;
	}

	get move() {
		return this.moves.move;
	}

	// ---- the sidebar (TaskDetail) -------------------------------------------------------------

	/** Full task (with description/result) shown in the sidebar. */
	get detail(): Task | null {
		return this.task.task;
	}

	get detailId(): number | null {
		return this.task.id;
	}

	get detailError(): string | null {
		return this.task.error;
	}

	get openTask() {
		return this.task.open;
	}

	get closeTask() {
		return this.task.close;
	}

	// ---- loading and live events -------------------------------------------------------------

	notify(message: string) {
		this.#notify(message);
	}

	isDeleted(id: number): boolean {
		return this.#deleted.has(id);
	}

	/**
	 * Ask for a board before the page that shows it has mounted (the route's `load`), so the
	 * request and the server's answer overlap the app's start-up; the first `load` of that
	 * board and query takes the answer.
	 */
	prefetch = (projectId: number, q = '') => {
		const early = takeEarlyBoard(projectId, q);
		const board = early
			? early.then((answer) => answer ?? this.api.getBoard(projectId, q || undefined))
			: this.api.getBoard(projectId, q || undefined);
		board.catch(() => {}); // a failure is reported by the load that takes it
		this.#prefetched = { projectId, q, board };
	};

	#take(projectId: number, q: string): Promise<Board> | null {
		const held = this.#prefetched;
		this.#prefetched = null;
		return held && held.projectId === projectId && held.q === q ? held.board : null;
	}

	/** Load (or reload) the board. Events arriving meanwhile are queued and applied afterwards. */
	load = async (projectId: number, q: string = this.query): Promise<void> => {
		const seq = ++this.#loadSeq;
		if (projectId !== this.projectId) {
			this.projectId = projectId;
			this.project = null;
			this.cards.clear();
			this.loaded = false;
			this.snapshotEventId = null;
			this.#deleted.clear();
			this.moves.reset();
			this.#queue = [];
			this.closeTask();
		}
		this.query = q;
		this.loading = true;
		this.#loadingNow = true;
		try {
			const board = await (this.#take(projectId, q) ?? this.api.getBoard(projectId, q || undefined));
			if (seq !== this.#loadSeq) return;
			const lists = emptyColumns();
			for (const column of board.columns) {
				if (isStatus(column.status)) lists[column.status] = column.tasks.map(toBoardTask);
			}
			this.project = board.project;
			if (this.snapshotEventId == null) this.snapshotEventId = board.last_event_id;
			this.lastEventId = board.last_event_id;
			this.cards.replace(lists);
			this.error = null;
			this.loaded = true;
			this.snapshots++;
		} catch (err) {
			if (seq !== this.#loadSeq) return;
			this.error = errorMessage(err);
		} finally {
			if (seq === this.#loadSeq) {
				this.loading = false;
				this.#loadingNow = false;
				this.flush();
			}
		}
	};

	reset = () => {
		this.#loadSeq++;
		this.projectId = null;
		this.project = null;
		this.cards.clear();
		this.loaded = false;
		this.snapshotEventId = null;
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

	/** Apply the events that waited for a drag or a load to end. */
	flush() {
		if (this.dragging || this.#loadingNow) return;
		const queued = this.#queue;
		this.#queue = [];
		for (const event of queued) this.applyEvent(event);
	}

	/** Insert or replace a task in its column at its position. Returns false if it was stale. */
	upsert = (task: Task | BoardTask): boolean => {
		if (this.#deleted.has(task.id)) return false;
		const cards = this.cards;
		const existing = cards.find(task.id);
		if (existing && !isNewer(existing.task, task)) return false;
		if ('description' in task) this.task.offer(task);
		else this.task.offerCard(task);
		const card = toBoardTask(task);
		if (card.run === undefined && existing?.task.run) card.run = existing.task.run;
		const visible = isStatus(task.status) && (!this.query || matchesQuery(task, this.query));
		if (existing && visible && existing.status === task.status && existing.task.position === task.position) {
			cards.put(card); // same place: only the card's content changes
			return true;
		}
		if (existing) cards.removeAt(existing.status, existing.index);
		if (!visible) {
			cards.forget(task.id);
			return true;
		}
		cards.put(card);
		cards.insertSorted(card.status as TaskStatus, card);
		return true;
	};

	/** Show a task's newest run on its card (an older run's news never replaces a newer run). */
	#applyRun(run: RunSummary) {
		const held = this.find(run.task_id);
		if (!held) return;
		const current = held.task.run;
		if (current && current.id > run.id) return;
		this.cards.put({ ...held.task, run });
	}

	/** Start a task's run (a card dropped on Running): null once queued, else why it cannot start. */
	startRun = async (task: BoardTask): Promise<string | null> => {
		try {
			if (!task.blocked) {
				// Without credentials a run would be queued only to fail at once: say so instead.
				const status = await this.api.agentsStatus().catch(() => null);
				if (status && !status.can_run) return status.problem ?? 'agents cannot run on this server';
			}
			const { prompt: _p, result: _r, pending_approvals: _a, resume_session_id: _s, ...run } = await this.api.startRun(task.id);
			this.#applyRun(run);
			return null;
		} catch (err) {
			return errorMessage(err);
		}
	};

	remove = (id: number): void => {
		this.#deleted.add(id);
		const existing = this.find(id);
		if (existing) this.cards.removeAt(existing.status, existing.index);
		this.cards.forget(id);
		if (this.detailId === id) this.closeTask();
	};

	async refreshTask(id: number, body: unknown) {
		let current: Task | null = null;
		if (body && typeof body === 'object' && 'current' in body) {
			current = (body as { current: Task | null }).current ?? null;
		}
		if (!current || !('version' in current) || !('status' in current)) {
			try {
				current = (await this.api.getTask(id)) ?? null;
			} catch {
				current = null;
			}
		}
		if (current) this.upsert(current);
	}

	// ---- CRUD ---------------------------------------------------------------------------

	createTask = async (input: Omit<TaskCreate, 'project_id'>): Promise<Task> => {
		if (this.projectId == null) throw new Error('No project selected');
		const task = await this.api.createTask({ ...input, project_id: this.projectId });
		this.upsert(task);
		return task;
	};

	/** Each task's edit being saved: the next one waits for it (see `updateTask`). */
	private saving = new Map<number, Promise<unknown>>();

	/**
	 * PATCH with `baseVersion` (the version the user edited) or else the version we hold; a 409
	 * refreshes the task and rethrows for the caller to show. Edits of one task are sent one
	 * after the other: one made while another is on its way (a blocker picked, then the
	 * auto-start switch ticked) is sent with the version the first one made, not refused.
	 */
	updateTask = (id: number, changes: Omit<TaskUpdate, 'version'>, baseVersion?: number): Promise<Task> => {
		const before = this.saving.get(id);
		const mine = (before ? before.catch(() => undefined) : Promise.resolve()).then(() =>
			this.sendUpdate(id, changes, baseVersion)
		);
		this.saving.set(id, mine);
		const forget = () => {
			if (this.saving.get(id) === mine) this.saving.delete(id);
		};
		mine.then(forget, forget);
		return mine;
	};

	private sendUpdate = async (
		id: number,
		changes: Omit<TaskUpdate, 'version'>,
		baseVersion?: number
	): Promise<Task> => {
		const version =
			baseVersion ?? (this.detail?.id === id ? this.detail.version : this.find(id)?.task.version);
		if (version == null) throw new Error('Unknown task');
		try {
			const task = await this.api.updateTask(id, { ...changes, version });
			this.moves.noteOwnVersion(id, task.version);
			this.upsert(task);
			this.task.offer(task);
			return task;
		} catch (err) {
			if (err instanceof ApiError && err.status === 409) await this.refreshTask(id, err.body);
			throw err;
		}
	};

	deleteTask = async (id: number): Promise<void> => {
		await this.api.deleteTask(id);
		this.remove(id);
	};
}

export const board = new BoardState();
