import { describe, expect, it } from 'vitest';
import { nothingToMerge, runFitsColumn } from './run-state';

describe('a run and its card', () => {
	it("shows a finished run's outcome only in the column that outcome put the card in", () => {
		expect(runFitsColumn('todo', { status: 'failed' })).toBe(true);
		expect(runFitsColumn('in_progress', { status: 'failed' })).toBe(false);
		expect(runFitsColumn('in_progress', { status: 'cancelled' })).toBe(false);
		expect(runFitsColumn('needs_review', { status: 'succeeded' })).toBe(true);
		expect(runFitsColumn('done', { status: 'succeeded' })).toBe(true);
		expect(runFitsColumn('todo', { status: 'succeeded' })).toBe(false);
		expect(runFitsColumn('in_progress', { status: 'interrupted' })).toBe(true);
		expect(runFitsColumn('todo', { status: 'interrupted' })).toBe(false);
	});

	it('always shows an active run, and nothing without a run', () => {
		for (const status of ['queued', 'running', 'waiting_approval'] as const) {
			expect(runFitsColumn('done', { status })).toBe(true);
		}
		expect(runFitsColumn('todo', null)).toBe(false);
	});

	it('has nothing to merge once a finished run changed nothing', () => {
		expect(nothingToMerge({ status: 'succeeded', has_changes: false })).toBe(true);
		expect(nothingToMerge({ status: 'succeeded', has_changes: true })).toBe(false);
		expect(nothingToMerge({ status: 'running', has_changes: false })).toBe(false);
		expect(nothingToMerge(null)).toBe(false);
	});
});
