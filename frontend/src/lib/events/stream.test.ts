import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { BoardEvent } from '$lib/api/types';
import { EventStream } from './stream.svelte';
import { FakeEventSource as FakeSource } from '$lib/test/fake-event-source';
import { makeTask } from '$lib/test/fixtures';

class FakeEventSource extends FakeSource {
	static get instances() {
		return FakeSource.all as FakeEventSource[];
	}

	emit(type: string, id: number, payload: unknown) {
		const data = JSON.stringify({ id, type, project_id: 1, created_at: '2026-01-01T00:00:00Z', payload });
		this.dispatch(type, { data, lastEventId: String(id) });
	}

	fail(closed: boolean) {
		this.drop(closed ? 2 : 0);
	}
}

function setup() {
	FakeSource.all = [];
	const stream = new EventStream({
		create: (url) => new FakeEventSource(url) as never,
		url: (projectId, lastEventId) =>
			`/api/events?project_id=${projectId}${lastEventId != null ? `&last_event_id=${lastEventId}` : ''}`,
		backoff: () => 0
	});
	const events: BoardEvent[] = [];
	const resync = vi.fn();
	stream.connect(1, (e) => events.push(e), resync);
	return { stream, events, resync, source: () => FakeEventSource.instances.at(-1)! };
}

describe('EventStream', () => {
	beforeEach(() => vi.useRealTimers());

	it("starts after the board snapshot's event cursor, so nothing falls between them", () => {
		FakeSource.all = [];
		const stream = new EventStream({
			create: (url) => new FakeEventSource(url) as never,
			url: (projectId, lastEventId) => `/api/events?project_id=${projectId}&last_event_id=${lastEventId}`
		});
		const events: BoardEvent[] = [];
		stream.connect(2, (e) => events.push(e), () => {}, 40);
		const source = FakeEventSource.instances.at(-1)!;
		expect(source.url).toBe('/api/events?project_id=2&last_event_id=40');
		source.open();
		source.emit('task.created', 40, makeTask(1, 'todo', 'a0')); // in the snapshot already
		source.emit('task.created', 41, makeTask(2, 'todo', 'a1'));
		expect(events).toHaveLength(1);
		expect(stream.lastEventId).toBe(41);
	});

	it('opens one EventSource for the board and dispatches named events', () => {
		const { stream, events, source } = setup();
		expect(FakeEventSource.instances).toHaveLength(1);
		expect(source().url).toBe('/api/events?project_id=1');
		source().open();
		expect(stream.status).toBe('open');
		source().emit('task.created', 5, makeTask(1, 'todo', 'a0'));
		source().emit('task.deleted', 6, { id: 1, short_id: 'KAN-1', project_id: 1 });
		expect(events.map((e) => e.type)).toEqual(['task.created', 'task.deleted']);
		expect(stream.lastEventId).toBe(6);
	});

	it('skips an event id it has already seen', () => {
		const { events, source } = setup();
		source().emit('task.updated', 7, makeTask(1, 'todo', 'a0'));
		source().emit('task.updated', 7, makeTask(1, 'todo', 'a0'));
		source().emit('task.updated', 6, makeTask(1, 'todo', 'a0'));
		expect(events).toHaveLength(1);
	});

	it('lets the browser reconnect by itself while it is CONNECTING', () => {
		const { stream, source } = setup();
		source().open();
		source().fail(false);
		expect(stream.status).toBe('reconnecting');
		expect(stream.downSince).not.toBeNull();
		expect(FakeEventSource.instances).toHaveLength(1);
		source().open();
		expect(stream.status).toBe('open');
		expect(stream.downSince).toBeNull();
	});

	it('recreates a CLOSED EventSource with last_event_id, then asks for a resync', async () => {
		vi.useFakeTimers();
		const { stream, source, resync } = setup();
		const first = source();
		first.open();
		first.emit('task.created', 41, makeTask(1, 'todo', 'a0'));
		first.fail(true);
		expect(stream.status).toBe('reconnecting');
		await vi.runAllTimersAsync();
		expect(FakeEventSource.instances).toHaveLength(2);
		expect(first.closed).toBe(true);
		expect(source().url).toBe('/api/events?project_id=1&last_event_id=41');
		source().open();
		expect(resync).toHaveBeenCalledTimes(1);
		expect(stream.status).toBe('open');
	});

	it("reconnects at once on the server's reconnect event", () => {
		const { source } = setup();
		const first = source();
		first.open();
		first.emit('task.created', 3, makeTask(1, 'todo', 'a0'));
		for (const fn of first.listeners.get('reconnect') ?? []) fn(new MessageEvent('reconnect'));
		expect(first.closed).toBe(true);
		expect(source().url).toContain('last_event_id=3');
	});

	it('ignores events from a source it has replaced, and disconnects cleanly', () => {
		const { stream, events, source } = setup();
		const first = source();
		stream.restart();
		first.emit('task.created', 9, makeTask(1, 'todo', 'a0'));
		expect(events).toHaveLength(0);
		stream.disconnect();
		expect(source().closed).toBe(true);
		expect(stream.status).toBe('idle');
	});

	it('starts fresh (no last id) when switching boards', () => {
		const { stream, source } = setup();
		source().emit('task.created', 12, makeTask(1, 'todo', 'a0'));
		stream.connect(2, () => {});
		expect(stream.lastEventId).toBeNull();
		expect(source().url).toBe('/api/events?project_id=2');
	});
});
