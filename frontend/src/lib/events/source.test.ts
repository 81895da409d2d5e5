import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeEventSource as Fake } from '$lib/test/fake-event-source';
import { ReconnectingSource, type SourceOptions } from './source.svelte';

function make(options: Partial<SourceOptions> = {}) {
	Fake.all = [];
	const messages: [string, string][] = [];
	const opens: { recreated: boolean; afterError: boolean }[] = [];
	const source = new ReconnectingSource({
		url: (resuming) => (resuming ? '/stream?resume' : '/stream'),
		events: ['item', 'error'],
		onMessage: (type, message) => messages.push([type, message.data]),
		onOpen: (how) => opens.push(how),
		create: (url) => new Fake(url) as never,
		backoff: (n) => 100 * 2 ** n,
		...options
	});
	return { source, messages, opens, last: () => Fake.all.at(-1)! };
}

describe('ReconnectingSource', () => {
	afterEach(() => vi.useRealTimers());

	it('hands named events over; a message named `error` is not a dropped connection', () => {
		const { source, messages, opens, last } = make();
		source.open();
		expect(source.status).toBe('connecting');
		last().open();
		last().dispatch('item', { data: 'a' });
		last().dispatch('error', { data: 'b' });
		expect(source.status).toBe('open');
		expect(messages).toEqual([
			['item', 'a'],
			['error', 'b']
		]);
		expect(opens).toEqual([{ recreated: false, afterError: false }]);
	});

	it('leaves CONNECTING to the browser and recreates a CLOSED source after a growing backoff', () => {
		vi.useFakeTimers();
		const { source, opens, last } = make();
		source.open();
		last().open();
		last().drop(0);
		expect(source.status).toBe('reconnecting');
		expect(source.downSince).not.toBeNull();
		last().open();
		expect(opens.at(-1)).toEqual({ recreated: false, afterError: true });

		const first = last();
		first.drop(2);
		expect(first.closed).toBe(true);
		vi.advanceTimersByTime(99);
		expect(Fake.all).toHaveLength(1);
		vi.advanceTimersByTime(1);
		expect(last().url).toBe('/stream?resume');
		last().drop(2);
		vi.advanceTimersByTime(199);
		expect(Fake.all).toHaveLength(2);
		vi.advanceTimersByTime(1);
		expect(Fake.all).toHaveLength(3);
		last().open();
		expect(opens.at(-1)).toEqual({ recreated: true, afterError: true });
		expect(source.downSince).toBeNull();
	});

	it('ignores a replaced source, and a close cancels a pending reopen', () => {
		vi.useFakeTimers();
		const { source, messages, last } = make();
		source.open();
		const first = last();
		source.restart();
		expect(first.closed).toBe(true);
		first.dispatch('item', { data: 'ghost' });
		expect(messages).toEqual([]);
		last().drop(2);
		source.close();
		vi.runAllTimers();
		expect(Fake.all).toHaveLength(2);
		expect(source.status).toBe('idle');
		expect(source.active).toBe(false);
	});
});
