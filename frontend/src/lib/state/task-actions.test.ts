import { describe, expect, it } from 'vitest';
import { TaskActions } from './task-actions.svelte';

describe('TaskActions', () => {
	const run = { id: 'run' as const, label: 'Run an agent', run: () => undefined };
	const approve = { id: 'approve' as const, label: 'Approve and merge', run: () => undefined };

	it("lists the actions offered for the open task, and none for another", () => {
		const actions = new TaskActions();
		expect(actions.for(1)).toEqual([]);
		actions.offer(1, [run]);
		expect(actions.for(1)).toEqual([run]);
		expect(actions.for(2)).toEqual([]);
		expect(actions.for(null)).toEqual([]);
	});

	it('withdraws an offer only while it is the current one', () => {
		const actions = new TaskActions();
		const first = actions.offer(1, [run]);
		const second = actions.offer(1, [run, approve]); // the run bar's conditions changed
		first(); // the old offer's cleanup runs after the new one was made
		expect(actions.for(1)).toEqual([run, approve]);
		second();
		expect(actions.for(1)).toEqual([]);
	});
});
