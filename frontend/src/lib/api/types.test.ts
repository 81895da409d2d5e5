import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, everyMember, PLUGIN_EVENT_TYPES, RUN_EVENT_TYPES, STATUSES } from './types';

describe('lists typed against the schema', () => {
	it('keep their order and hold each member once', () => {
		expect(STATUSES).toEqual(['todo', 'in_progress', 'needs_review', 'done']);
		for (const list of [STATUSES, EVENT_TYPES, RUN_EVENT_TYPES, PLUGIN_EVENT_TYPES]) {
			expect(new Set(list).size).toBe(list.length);
		}
		expect(EVENT_TYPES).toEqual(expect.arrayContaining([...PLUGIN_EVENT_TYPES]));
	});

	it('do not compile when a member is missing or foreign (checked by `npm run check`)', () => {
		type Colour = 'red' | 'green';
		expect(everyMember<Colour>()(['red', 'green'])).toEqual(['red', 'green']);
		// @ts-expect-error 'green' is missing
		everyMember<Colour>()(['red']);
		// @ts-expect-error 'blue' is not a member
		everyMember<Colour>()(['red', 'green', 'blue']);
	});
});
