/**
 * The board's filters: labels, priorities, columns and "needs me". They live in the page's URL
 * (`?label=bug&label=ui&priority=high&status=todo&needs=me`), so a reload or a shared link shows
 * the same cards. Within one kind any value matches (label bug OR ui); kinds combine (AND), and
 * with the search text.
 */
import { PRIORITIES, STATUSES, type BoardTask, type RunSummary, type TaskPriority, type TaskStatus } from '$lib/api/types';

export type BoardFilters = {
	labels: string[];
	priorities: TaskPriority[];
	statuses: TaskStatus[];
	needsMe: boolean;
};

/** The URL's query keys, one per kind (a kind with several values repeats its key). */
export const FILTER_KEYS = { labels: 'label', priorities: 'priority', statuses: 'status', needsMe: 'needs' } as const;
const NEEDS_ME = 'me';
/** Every filter key set to null: what a navigation that drops the filters passes (another project). */
export const NO_FILTER_PARAMS: Record<string, null> = Object.fromEntries(Object.values(FILTER_KEYS).map((key) => [key, null]));

export const NO_FILTERS: BoardFilters = Object.freeze({ labels: [], priorities: [], statuses: [], needsMe: false }) as BoardFilters;

type Filterable = Pick<BoardTask, 'status' | 'priority' | 'labels'> & { run?: Pick<RunSummary, 'status'> | null };

function unique<T>(values: T[]): T[] {
	return [...new Set(values)];
}

/** The filters a URL holds; values that are not a priority or a column are left out. */
export function parseFilters(params: URLSearchParams): BoardFilters {
	const labels = unique(params.getAll(FILTER_KEYS.labels).map((l) => l.trim()).filter(Boolean));
	const priorities = unique(params.getAll(FILTER_KEYS.priorities)).filter((p): p is TaskPriority =>
		(PRIORITIES as readonly string[]).includes(p)
	);
	const statuses = unique(params.getAll(FILTER_KEYS.statuses)).filter((s): s is TaskStatus =>
		(STATUSES as readonly string[]).includes(s)
	);
	const needsMe = params.getAll(FILTER_KEYS.needsMe).includes(NEEDS_ME);
	return { labels, priorities, statuses, needsMe };
}

/** Write the filters into `params` (replacing what it held for them), in a stable order. */
export function writeFilters(params: URLSearchParams, filters: BoardFilters): void {
	for (const key of Object.values(FILTER_KEYS)) params.delete(key);
	for (const label of filters.labels) params.append(FILTER_KEYS.labels, label);
	for (const priority of PRIORITIES) if (filters.priorities.includes(priority)) params.append(FILTER_KEYS.priorities, priority);
	for (const status of STATUSES) if (filters.statuses.includes(status)) params.append(FILTER_KEYS.statuses, status);
	if (filters.needsMe) params.append(FILTER_KEYS.needsMe, NEEDS_ME);
}

export function sameFilters(a: BoardFilters, b: BoardFilters): boolean {
	const params = (f: BoardFilters) => {
		const p = new URLSearchParams();
		writeFilters(p, f);
		return p.toString();
	};
	return params(a) === params(b);
}

export function hasFilters(filters: BoardFilters): boolean {
	return (
		filters.labels.length > 0 || filters.priorities.length > 0 || filters.statuses.length > 0 || filters.needsMe
	);
}

/** How many kinds of filter are set (the filter button's badge). */
export function filterCount(filters: BoardFilters): number {
	return filters.labels.length + filters.priorities.length + filters.statuses.length + (filters.needsMe ? 1 : 0);
}

/** The task waits for the user: its agent asks for an approval, or its work waits in Review. */
export function needsMe(task: Pick<BoardTask, 'status'> & { run?: Pick<RunSummary, 'status'> | null }): boolean {
	return task.status === 'needs_review' || task.run?.status === 'waiting_approval';
}

export function matchesFilters(task: Filterable, filters: BoardFilters): boolean {
	if (filters.statuses.length && !filters.statuses.includes(task.status)) return false;
	if (filters.priorities.length && !filters.priorities.includes(task.priority)) return false;
	if (filters.labels.length) {
		const labels = task.labels.map((l) => l.toLowerCase());
		if (!filters.labels.some((l) => labels.includes(l.toLowerCase()))) return false;
	}
	if (filters.needsMe && !needsMe(task)) return false;
	return true;
}

/** One filter value switched on or off. */
export function toggled<K extends 'labels' | 'priorities' | 'statuses'>(
	filters: BoardFilters,
	kind: K,
	value: BoardFilters[K][number],
	on: boolean
): BoardFilters {
	const values = filters[kind] as string[];
	const next = on ? unique([...values, value]) : values.filter((v) => v !== value);
	return { ...filters, [kind]: next };
}

/**
 * A column's full order after a drag among its visible cards: the drag library sees only the
 * visible cards (`shown`, in their new order), the column also holds hidden ones (`full`, in the
 * old order). Each hidden card stays right after the visible card it followed (at the top when
 * none did); the dragged card (`movedId`) is never followed, so hidden cards do not travel with it.
 */
export function mergeShown<T extends { id: number }>(
	full: readonly T[],
	shown: readonly T[],
	isHidden: (card: T) => boolean,
	movedId: number | null = null
): T[] {
	const shownIds = new Set(shown.map((c) => c.id));
	const after = new Map<number | null, T[]>();
	let anchor: number | null = null;
	for (const card of full) {
		if (shownIds.has(card.id)) {
			if (card.id !== movedId) anchor = card.id;
		} else if (isHidden(card)) {
			const list = after.get(anchor) ?? [];
			list.push(card);
			after.set(anchor, list);
		}
	}
	const merged: T[] = [...(after.get(null) ?? [])];
	for (const card of shown) {
		merged.push(card);
		merged.push(...(after.get(card.id) ?? []));
	}
	return merged;
}

/** The labels of the board's cards, for the filter menu (the selected ones included). */
export function boardLabels(cards: Iterable<Pick<BoardTask, 'labels'>>, selected: readonly string[] = []): string[] {
	const byKey = new Map<string, string>();
	for (const label of selected) byKey.set(label.toLowerCase(), label);
	for (const card of cards) for (const label of card.labels) if (!byKey.has(label.toLowerCase())) byKey.set(label.toLowerCase(), label);
	return [...byKey.values()].sort((a, b) => a.localeCompare(b));
}
