import { SvelteMap } from 'svelte/reactivity';
import { STATUSES, type BoardTask, type Task, type TaskStatus } from '$lib/api/types';
import { indexWorkflows } from '$lib/workflows/progress';

export type Columns = Record<TaskStatus, BoardTask[]>;
export type Place = { task: BoardTask; status: TaskStatus; index: number };

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
		task.short_id.toLowerCase() === needle ||
		task.labels.some((label) => label.toLowerCase().includes(needle))
	);
}

export function isStatus(value: unknown): value is TaskStatus {
	return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

/**
 * The cards of one board: each column's order, and each card's newest content. The order
 * arrays are replaced, never mutated, and only when the order changes: the keyed lists and the
 * drag library then reconcile only on moves, and an edit re-renders that one card.
 */
export class BoardCards {
	/** Each column's cards in board order. */
	lists = $state.raw<Columns>(emptyColumns());
	/** The newest content of every card, by id. */
	#cards = new SvelteMap<number, BoardTask>();
	/** The columns with each card's newest content. */
	columns = $derived<Columns>(withContent(this.lists, this.#cards));
	/** Each workflow's cards on the board (worked out only while something reads it: workflows' cards). */
	workflows = $derived(indexWorkflows(this.#cards.values()));

	get total(): number {
		return STATUSES.reduce((n, s) => n + this.lists[s].length, 0);
	}

	count = (status: TaskStatus): number => this.lists[status].length;

	/** The newest content of a card (undefined for the drag library's placeholder). */
	card = (id: number): BoardTask | undefined => this.#cards.get(id);

	find = (id: number): Place | null => {
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

	findByRun = (runId: number): BoardTask | null => {
		for (const card of this.#cards.values()) if (card.run?.id === runId) return card;
		return null;
	};

	/** Show these columns (a freshly loaded board). */
	replace(lists: Columns) {
		this.#cards.clear();
		for (const status of STATUSES) for (const card of lists[status]) this.put(card);
		this.lists = lists;
	}

	clear() {
		this.lists = emptyColumns();
		this.#cards.clear();
	}

	setList(status: TaskStatus, list: BoardTask[]) {
		this.lists = { ...this.lists, [status]: list };
	}

	removeAt(status: TaskStatus, index: number) {
		const list = this.lists[status];
		this.setList(status, [...list.slice(0, index), ...list.slice(index + 1)]);
	}

	insertAt(status: TaskStatus, index: number, card: BoardTask) {
		const list = this.lists[status];
		this.setList(status, [...list.slice(0, index), card, ...list.slice(index)]);
	}

	replaceAt(status: TaskStatus, index: number, card: BoardTask) {
		const list = this.lists[status].slice();
		list[index] = card;
		this.setList(status, list);
	}

	/** Insert a card where its position puts it. */
	insertSorted(status: TaskStatus, task: BoardTask) {
		const list = this.lists[status];
		let index = list.findIndex((t) => compareTasks(this.#cards.get(t.id) ?? t, task) > 0);
		if (index === -1) index = list.length;
		this.insertAt(status, index, task);
	}

	/** Set a card's content (its place in the order is unchanged). */
	put(card: BoardTask) {
		this.#cards.set(card.id, card);
	}

	forget(id: number) {
		this.#cards.delete(id);
	}
}
