import { describe, expect, it } from 'vitest';
import type { WorkflowStep } from '$lib/api/types';
import { layoutSteps, nodePositions, stepEdges, stepState, tallestColumn, type GraphStep } from './graph';

const steps = (...list: [string, string[]][]): GraphStep[] => list.map(([id, needs]) => ({ id, needs }));
const placements = (list: GraphStep[]) => Object.fromEntries([...layoutSteps(list)].map(([id, p]) => [id, [p.column, p.row]]));

describe('layoutSteps', () => {
	it('puts a chain in one row, a column per step', () => {
		expect(placements(steps(['plan', []], ['approve', ['plan']], ['build', ['approve']]))).toEqual({
			plan: [0, 0],
			approve: [1, 0],
			build: [2, 0]
		});
	});

	it('places a step by its longest path from a root, and rows in template order', () => {
		// a → b → d, a → c, d also needs c; e needs nothing.
		const layout = placements(
			steps(['a', []], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']], ['e', []], ['f', ['a', 'd']])
		);
		expect(layout).toEqual({ a: [0, 0], b: [1, 0], c: [1, 1], d: [2, 0], e: [0, 1], f: [3, 0] });
	});

	it('counts the longest path, not the shortest', () => {
		// z needs a directly and through x → y: it goes after y.
		expect(placements(steps(['a', []], ['x', ['a']], ['y', ['x']], ['z', ['a', 'y']]))).toMatchObject({ z: [3, 0] });
	});

	it('ignores needs naming no step, and does not hang on a cycle', () => {
		expect(placements(steps(['a', ['ghost']], ['b', ['a']]))).toEqual({ a: [0, 0], b: [1, 0] });
		const cyclic = placements(steps(['a', ['b']], ['b', ['a']]));
		expect(Object.keys(cyclic).sort()).toEqual(['a', 'b']);
		expect(cyclic.a[0]).not.toEqual(cyclic.b[0]);
	});

	it('takes a step listed twice once', () => {
		expect(layoutSteps(steps(['a', []], ['a', []])).size).toBe(1);
	});
});

describe('nodePositions', () => {
	const size = { width: 100, height: 40, gapX: 20, gapY: 10 };

	it('spaces columns by width and rows by height, centring shorter columns', () => {
		const positions = nodePositions(layoutSteps(steps(['a', []], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']])), size);
		expect(positions.get('a')).toEqual({ x: 0, y: 25 });
		expect(positions.get('b')).toEqual({ x: 120, y: 0 });
		expect(positions.get('c')).toEqual({ x: 120, y: 50 });
		expect(positions.get('d')).toEqual({ x: 240, y: 25 });
	});

	it('places nothing for no steps', () => {
		expect(nodePositions(new Map(), size).size).toBe(0);
		expect(tallestColumn(new Map())).toBe(0);
	});

	it('tells how many rows the fullest column has', () => {
		expect(tallestColumn(layoutSteps(steps(['a', []], ['b', ['a']], ['c', ['a']], ['d', ['a']], ['e', ['d']])))).toBe(3);
		expect(tallestColumn(layoutSteps(steps(['a', []], ['b', ['a']])))).toBe(1);
	});
});

describe('stepEdges', () => {
	it('draws an edge from each need to its step, skipping unknown needs', () => {
		expect(stepEdges(steps(['a', []], ['b', ['a', 'ghost']], ['c', ['a', 'b']]))).toEqual([
			{ id: 'a->b', source: 'a', target: 'b' },
			{ id: 'a->c', source: 'a', target: 'c' },
			{ id: 'b->c', source: 'b', target: 'c' }
		]);
	});
});

describe('stepState', () => {
	const step = (extra: Partial<WorkflowStep>) =>
		stepState({ task_id: 1, status: 'todo', run_status: null, blocked: false, ...extra });

	it('reads the card and its newest run', () => {
		expect(step({ task_id: null })).toBe('deleted');
		expect(step({ status: 'done', run_status: 'succeeded' })).toBe('done');
		expect(step({ status: 'needs_review' })).toBe('needs_you');
		expect(step({ status: 'in_progress', run_status: 'waiting_approval' })).toBe('needs_you');
		expect(step({ status: 'in_progress', run_status: 'running' })).toBe('running');
		expect(step({ status: 'in_progress', run_status: 'queued' })).toBe('running');
		expect(step({ status: 'todo', run_status: 'failed' })).toBe('stalled');
		expect(step({ status: 'todo', run_status: 'interrupted' })).toBe('stalled');
		expect(step({ blocked: true })).toBe('blocked');
		expect(step({})).toBe('waiting');
	});
});
