/**
 * What the command palette lists for a query: the board's cards that match (by short id or
 * words of the title and labels) and the commands whose names match fuzzily. Pure functions;
 * the palette component supplies the entries and runs the chosen one.
 */
import { computeCommandScore } from 'bits-ui';

export type PaletteTask = { id: number; short_id: string; title: string; labels: readonly string[] };

export type PaletteEntry = {
	/** Unique among the entries (`task:12`, `go:plugins`). */
	id: string;
	label: string;
	/** The section it is listed under. */
	group: string;
	/** Further words it is found by. */
	keywords?: string[];
	/** A task's match, computed by `taskScore` (commands are scored by their label). */
	score?: number;
};

export type PaletteSection<E extends PaletteEntry = PaletteEntry> = { group: string; entries: E[] };

/**
 * How well a card matches: 3 for its exact short id (`dem-3`, or its number alone), 1.5 for the
 * start of one (`DEM-` lists the project's cards), about 1 when every word of the query is in
 * its title, labels or short id; 0 for no match.
 */
export function taskScore(task: PaletteTask, query: string): number {
	const q = query.trim().toLowerCase();
	if (!q) return 0;
	const shortId = task.short_id.toLowerCase();
	if (shortId === q) return 3;
	if (/^#?\d+$/.test(q) && shortId.endsWith(`-${q.replace('#', '')}`)) return 2.5;
	if (shortId.startsWith(q)) return 1.5;
	const title = task.title.toLowerCase();
	const haystack = `${title} ${task.labels.join(' ').toLowerCase()} ${shortId}`;
	if (!q.split(/\s+/).every((word) => haystack.includes(word))) return 0;
	if (title.startsWith(q)) return 1.3;
	if (title.includes(q)) return 1.2;
	return 1;
}

/**
 * The cards to list. Without a query: the open task, then the recently opened ones. With one:
 * the best matches (the open and recent tasks first among equals, then board order).
 */
export function pickTasks<T extends PaletteTask>(
	tasks: Iterable<T>,
	query: string,
	options: { openId?: number | null; recent?: readonly number[]; limit?: number } = {}
): { task: T; score: number }[] {
	const { openId = null, recent = [], limit = 8 } = options;
	const boost = (id: number) => (id === openId ? 0.02 : recent.includes(id) ? 0.01 * (1 - recent.indexOf(id) / (recent.length + 1)) : 0);
	if (!query.trim()) {
		const byId = new Map<number, T>();
		for (const task of tasks) byId.set(task.id, task);
		const ids = [...(openId != null ? [openId] : []), ...recent.filter((id) => id !== openId)];
		return ids.flatMap((id) => {
			const task = byId.get(id);
			return task ? [{ task, score: 0 }] : [];
		}).slice(0, Math.min(limit, 5));
	}
	const found: { task: T; score: number; order: number }[] = [];
	let order = 0;
	for (const task of tasks) {
		const score = taskScore(task, query);
		if (score > 0) found.push({ task, score: score + boost(task.id), order });
		order++;
	}
	found.sort((a, b) => b.score - a.score || a.order - b.order);
	return found.slice(0, limit).map(({ task, score }) => ({ task, score }));
}

/** A command's match: fuzzy on its label and keywords, between 0 (none) and 1. */
export function commandScore(entry: Pick<PaletteEntry, 'label' | 'keywords'>, query: string): number {
	const q = query.trim();
	if (!q) return 0;
	return computeCommandScore(entry.label, q, entry.keywords);
}

/**
 * The entries in sections. Without a query, as given. With one, only those that match: each
 * section's entries best first, and the sections by their best entry (ties keep their order).
 */
export function arrange<E extends PaletteEntry>(entries: readonly E[], query: string): PaletteSection<E>[] {
	const filtering = query.trim() !== '';
	const sections = new Map<string, { entries: { entry: E; score: number; order: number }[]; best: number; order: number }>();
	entries.forEach((entry, order) => {
		const score = filtering ? (entry.score ?? commandScore(entry, query)) : 0;
		if (filtering && score <= 0) return;
		let section = sections.get(entry.group);
		if (!section) {
			section = { entries: [], best: -Infinity, order: sections.size };
			sections.set(entry.group, section);
		}
		section.entries.push({ entry, score, order });
		section.best = Math.max(section.best, score);
	});
	const list = [...sections.entries()].map(([group, s]) => ({ group, ...s }));
	if (filtering) {
		list.sort((a, b) => b.best - a.best || a.order - b.order);
		for (const s of list) s.entries.sort((a, b) => b.score - a.score || a.order - b.order);
	}
	return list.map((s) => ({ group: s.group, entries: s.entries.map((e) => e.entry) }));
}

/** The recently opened tasks with `id` in front, at most `max`. */
export function remember(recent: readonly number[], id: number, max = 8): number[] {
	return [id, ...recent.filter((r) => r !== id)].slice(0, max);
}
