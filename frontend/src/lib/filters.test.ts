import { describe, expect, it } from 'vitest';
import {
	boardLabels,
	filterCount,
	hasFilters,
	matchesFilters,
	mergeShown,
	needsMe,
	NO_FILTERS,
	parseFilters,
	sameFilters,
	toggled,
	writeFilters,
	type BoardFilters
} from './filters';
import { makeRun, makeTask } from '$lib/test/fixtures';

const params = (query: string) => new URLSearchParams(query);

function written(filters: BoardFilters, base = ''): string {
	const p = params(base);
	writeFilters(p, filters);
	return p.toString();
}

describe('filters in the URL', () => {
	it('reads every kind, repeated keys as several values', () => {
		expect(parseFilters(params('label=bug&label=ui&priority=high&status=todo&status=done&needs=me'))).toEqual({
			labels: ['bug', 'ui'],
			priorities: ['high'],
			statuses: ['todo', 'done'],
			needsMe: true
		});
	});

	it('drops values that are not a priority or a column, blanks and repeats', () => {
		expect(parseFilters(params('label=&label=%20bug%20&label=bug&priority=huge&status=doing&needs=you'))).toEqual({
			labels: ['bug'],
			priorities: [],
			statuses: [],
			needsMe: false
		});
	});

	it('writes them back in a stable order, keeping the other parameters', () => {
		const filters: BoardFilters = { labels: ['ui', 'a&b'], priorities: ['urgent', 'low'], statuses: ['done', 'todo'], needsMe: true };
		const query = written(filters, 'project=3&q=login&label=old');
		expect(query).toBe('project=3&q=login&label=ui&label=a%26b&priority=low&priority=urgent&status=todo&status=done&needs=me');
		expect(parseFilters(params(query))).toEqual({ ...filters, priorities: ['low', 'urgent'], statuses: ['todo', 'done'] });
	});

	it('removes every filter for none', () => {
		expect(written(NO_FILTERS, 'project=1&label=x&priority=high&status=todo&needs=me')).toBe('project=1');
	});

	it('tells equal filters apart from different ones regardless of order', () => {
		const a: BoardFilters = { ...NO_FILTERS, statuses: ['done', 'todo'] };
		expect(sameFilters(a, { ...NO_FILTERS, statuses: ['todo', 'done'] })).toBe(true);
		expect(sameFilters(a, { ...a, needsMe: true })).toBe(false);
		expect(hasFilters(NO_FILTERS)).toBe(false);
		expect(hasFilters(a)).toBe(true);
		expect(filterCount({ labels: ['x'], priorities: ['low'], statuses: ['todo', 'done'], needsMe: true })).toBe(5);
	});

	it('switches one value on or off', () => {
		const on = toggled(NO_FILTERS, 'labels', 'bug', true);
		expect(on.labels).toEqual(['bug']);
		expect(toggled(on, 'labels', 'bug', true).labels).toEqual(['bug']);
		expect(toggled(on, 'labels', 'bug', false).labels).toEqual([]);
		expect(NO_FILTERS.labels).toEqual([]);
	});
});

describe('matching', () => {
	const bug = makeTask(1, 'todo', 'a0', { labels: ['Bug', 'ui'], priority: 'high' });
	const review = makeTask(2, 'needs_review', 'a0', { priority: 'low' });
	const waiting = { ...makeTask(3, 'in_progress', 'a0'), run: makeRun(7, 3, 'waiting_approval') };

	it('needs me: waiting for an approval, or in Review', () => {
		expect(needsMe(review)).toBe(true);
		expect(needsMe(waiting)).toBe(true);
		expect(needsMe(bug)).toBe(false);
		expect(needsMe({ ...waiting, run: makeRun(7, 3, 'running') })).toBe(false);
	});

	it('any value of one kind, every kind', () => {
		expect(matchesFilters(bug, NO_FILTERS)).toBe(true);
		expect(matchesFilters(bug, { ...NO_FILTERS, labels: ['bug'] })).toBe(true); // labels ignore case
		expect(matchesFilters(bug, { ...NO_FILTERS, labels: ['docs', 'UI'] })).toBe(true);
		expect(matchesFilters(bug, { ...NO_FILTERS, labels: ['docs'] })).toBe(false);
		expect(matchesFilters(bug, { ...NO_FILTERS, labels: ['bug'], priorities: ['low'] })).toBe(false);
		expect(matchesFilters(review, { ...NO_FILTERS, priorities: ['low', 'high'], statuses: ['needs_review'] })).toBe(true);
		expect(matchesFilters(review, { ...NO_FILTERS, statuses: ['todo'] })).toBe(false);
		const needs = { ...NO_FILTERS, needsMe: true };
		expect([bug, review, waiting].filter((t) => matchesFilters(t, needs)).map((t) => t.id)).toEqual([2, 3]);
	});

	it('lists the board labels once, sorted, with the selected ones', () => {
		expect(boardLabels([bug, { labels: ['bug', 'api'] }], ['Zeta'])).toEqual(['api', 'Bug', 'ui', 'Zeta']);
	});
});

describe('a drag among the shown cards', () => {
	const card = (id: number, hidden = false) => ({ id, hidden });
	const [a, b, c, h1, h2] = [card(1), card(2), card(3), card(11, true), card(12, true)];
	const isHidden = (t: { hidden: boolean }) => t.hidden;

	it('keeps each hidden card after the card it followed', () => {
		expect(mergeShown([h1, a, b, h2, c], [c, a, b], isHidden, 3).map((t) => t.id)).toEqual([11, 3, 1, 2, 12]);
	});

	it('does not let hidden cards travel with the dragged card', () => {
		expect(mergeShown([a, b, h1], [b, a], isHidden, 2).map((t) => t.id)).toEqual([2, 1, 11]);
	});

	it('takes a card dragged in from another column, and drops one dragged out', () => {
		const d = card(4);
		expect(mergeShown([a, h1, b], [a, d, b], isHidden, 4).map((t) => t.id)).toEqual([1, 11, 4, 2]);
		expect(mergeShown([a, h1, b, h2], [b], isHidden, 1).map((t) => t.id)).toEqual([11, 2, 12]);
	});
});
