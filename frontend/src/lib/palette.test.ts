import { describe, expect, it } from 'vitest';
import { arrange, commandScore, pickTasks, remember, taskScore, type PaletteEntry } from './palette';

const task = (id: number, title: string, labels: string[] = []) => ({ id, short_id: `DEM-${id}`, title, labels });
const tasks = [
	task(1, 'Write the spec', ['docs']),
	task(2, 'Build the thing'),
	task(3, 'Ship it', ['release']),
	task(30, 'Fix the build on CI'),
	task(31, 'Spec review')
];

describe('taskScore', () => {
	it('puts the exact short id above everything, case-insensitive', () => {
		expect(taskScore(tasks[2], 'DEM-3')).toBe(3);
		expect(taskScore(tasks[2], ' dem-3 ')).toBe(3);
		expect(taskScore(tasks[2], '3')).toBe(2.5);
		expect(taskScore(tasks[3], 'DEM-3')).toBe(1.5); // DEM-30 starts with it
		expect(taskScore(tasks[0], 'DEM-3')).toBe(0);
	});

	it('matches every word in the title, labels or short id', () => {
		expect(taskScore(tasks[0], 'spec')).toBeGreaterThan(0);
		expect(taskScore(tasks[0], 'spec write')).toBeGreaterThan(0);
		expect(taskScore(tasks[0], 'docs')).toBeGreaterThan(0);
		expect(taskScore(tasks[0], 'spec ship')).toBe(0);
		expect(taskScore(tasks[0], '')).toBe(0);
		expect(taskScore(tasks[0], 'write the')).toBeGreaterThan(taskScore(tasks[0], 'the spec'));
	});
});

describe('pickTasks', () => {
	it('lists the open task, then the recent ones, without a query', () => {
		const picked = pickTasks(tasks, '', { openId: 3, recent: [1, 3, 99, 2] });
		expect(picked.map((p) => p.task.id)).toEqual([3, 1, 2]);
		expect(pickTasks(tasks, '')).toEqual([]);
	});

	it('lists the exact short id first, then the rest by score and board order', () => {
		expect(pickTasks(tasks, 'DEM-3').map((p) => p.task.id)).toEqual([3, 30, 31]);
		expect(pickTasks(tasks, 'spec').map((p) => p.task.id)).toEqual([31, 1]); // "Spec review" starts with it
		expect(pickTasks(tasks, 'build').map((p) => p.task.id)).toEqual([2, 30]);
		// among equal matches: the open task, then the recent ones, then board order
		expect(pickTasks(tasks, 'the').map((p) => p.task.id)).toEqual([1, 2, 30]);
		expect(pickTasks(tasks, 'the', { openId: 30 }).map((p) => p.task.id)).toEqual([30, 1, 2]);
		expect(pickTasks(tasks, 'the', { recent: [2, 30] }).map((p) => p.task.id)).toEqual([2, 30, 1]);
		expect(pickTasks(tasks, 'the', { openId: 1, recent: [30] }).map((p) => p.task.id)).toEqual([1, 30, 2]);
		expect(pickTasks(tasks, 'nothing like it')).toEqual([]);
	});

	it('stops at the limit', () => {
		const many = Array.from({ length: 50 }, (_, i) => task(i + 1, `Task ${i + 1}`));
		expect(pickTasks(many, 'task')).toHaveLength(8);
		expect(pickTasks(many, 'task', { limit: 3 }).map((p) => p.task.id)).toEqual([1, 2, 3]);
	});
});

describe('arrange', () => {
	const entries: PaletteEntry[] = [
		{ id: 'cmd:new', label: 'New task', group: 'Commands' },
		{ id: 'cmd:keys', label: 'Show keyboard shortcuts', group: 'Commands', keywords: ['help'] },
		{ id: 'go:plugins', label: 'Go to Plugins', group: 'Go to' },
		{ id: 'go:knowledge', label: 'Go to Knowledge', group: 'Go to' }
	];

	it('keeps everything in order without a query', () => {
		expect(arrange(entries, '  ').map((s) => [s.group, s.entries.map((e) => e.id)])).toEqual([
			['Commands', ['cmd:new', 'cmd:keys']],
			['Go to', ['go:plugins', 'go:knowledge']]
		]);
	});

	it('keeps the fuzzy matches, best section and entry first', () => {
		const sections = arrange(entries, 'plug');
		expect(sections.map((s) => s.group)).toEqual(['Go to']);
		expect(sections[0].entries.map((e) => e.id)).toEqual(['go:plugins']);
		expect(arrange(entries, 'help')[0].entries.map((e) => e.id)).toEqual(['cmd:keys']);
		expect(arrange(entries, 'gtk')[0].entries.map((e) => e.id)).toEqual(['go:knowledge']); // Go To Knowledge
		expect(arrange(entries, 'zzz')).toEqual([]);
	});

	it('ranks tasks by their own score', () => {
		const withTask: PaletteEntry[] = [...entries, { id: 'task:3', label: 'DEM-3 Ship it', group: 'Tasks', score: 3 }];
		expect(arrange(withTask, 'dem-3')[0]).toEqual({ group: 'Tasks', entries: [withTask[4]] });
	});

	it('scores commands between 0 and 1', () => {
		expect(commandScore({ label: 'New task' }, 'new')).toBeGreaterThan(0);
		expect(commandScore({ label: 'New task' }, 'new')).toBeLessThanOrEqual(1);
		expect(commandScore({ label: 'New task' }, 'xyz')).toBe(0);
	});
});

describe('remember', () => {
	it('puts the task in front, once, and keeps at most max', () => {
		expect(remember([1, 2, 3], 2)).toEqual([2, 1, 3]);
		expect(remember([1, 2, 3], 4, 3)).toEqual([4, 1, 2]);
		expect(remember([], 7)).toEqual([7]);
	});
});
