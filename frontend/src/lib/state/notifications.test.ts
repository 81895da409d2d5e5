import { describe, expect, it, vi } from 'vitest';
import {
	ALL_KINDS,
	kindLabel,
	NotificationsState,
	statusTone,
	withKind,
	type Delivery,
	type NotificationChannel
} from './notifications.svelte';
import { ApiError, type NotificationsApi } from '$lib/api/client';

function channel(id: number, extra: Partial<NotificationChannel> = {}): NotificationChannel {
	return {
		id,
		name: `Channel ${id}`,
		url_hint: 'json://127.0.0.1:8765/…',
		events: [...ALL_KINDS],
		project_id: null,
		enabled: true,
		created_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		...extra
	};
}

function delivery(id: number, channelId: number, extra: Partial<Delivery> = {}): Delivery {
	return {
		id,
		channel_id: channelId,
		channel_name: `Channel ${channelId}`,
		event_id: id * 10,
		kind: 'run_succeeded',
		title: `KAN-${id} is ready for review`,
		body: '',
		status: 'delivered',
		attempts: 1,
		next_attempt_at: null,
		last_error: null,
		created_at: '2026-01-01T00:00:00Z',
		delivered_at: '2026-01-01T00:00:01Z',
		...extra
	};
}

function fakeApi(overrides: Partial<NotificationsApi> = {}): NotificationsApi {
	return {
		listChannels: vi.fn(async () => []),
		createChannel: vi.fn(),
		updateChannel: vi.fn(),
		deleteChannel: vi.fn(async () => undefined),
		testChannel: vi.fn(),
		listDeliveries: vi.fn(async () => []),
		...overrides
	} as NotificationsApi;
}

describe('notification kinds', () => {
	it('switches one kind on or off in the usual order, and never off the last', () => {
		expect(withKind(['run_failed'], 'approval_requested', true)).toEqual(['approval_requested', 'run_failed']);
		expect(withKind(ALL_KINDS, 'run_succeeded', false)).toEqual(['approval_requested', 'run_failed', 'workflow_done']);
		expect(withKind(['run_failed', 'run_failed'], 'workflow_done', true)).toEqual(['run_failed', 'workflow_done']);
		expect(withKind(['run_failed'], 'run_failed', false)).toBeNull();
	});

	it('names kinds and colours statuses for the log', () => {
		expect(kindLabel('approval_requested')).toBe('Approval needed');
		expect(kindLabel('test')).toBe('Test');
		expect(kindLabel('something_new')).toBe('something_new');
		expect([statusTone('delivered'), statusTone('failed'), statusTone('pending'), statusTone('sending')]).toEqual([
			'success',
			'destructive',
			'muted',
			'warning'
		]);
	});
});

describe('NotificationsState', () => {
	it('loads channels by name and the log, newest first as the server sends it', async () => {
		const api = fakeApi({
			listChannels: vi.fn(async () => [channel(2, { name: 'Phone' }), channel(1, { name: 'Discord' })]),
			listDeliveries: vi.fn(async () => [delivery(5, 1), delivery(4, 2)])
		});
		const state = new NotificationsState(api);
		await state.load();
		expect(state.loaded).toBe(true);
		expect(state.channels.map((c) => c.name)).toEqual(['Discord', 'Phone']);
		expect(state.deliveries.map((d) => d.id)).toEqual([5, 4]);
		expect(api.listDeliveries).toHaveBeenCalledWith({ limit: 100 });
	});

	it('keeps a load error apart from the log’s and leaves the channels as they were', async () => {
		const state = new NotificationsState(
			fakeApi({
				listChannels: vi.fn(async () => {
					throw new ApiError(401, 'The server needs a token', {});
				}),
				listDeliveries: vi.fn(async () => {
					throw new ApiError(500, 'Internal server error', {});
				})
			})
		);
		await state.load();
		expect(state.loaded).toBe(false);
		expect(state.loadError).toBe('The server needs a token');
		expect(state.logError).toBe('Internal server error');
	});

	it('puts a created or changed channel in its place and renames it in the log', async () => {
		const api = fakeApi({
			listChannels: vi.fn(async () => [channel(1, { name: 'B' })]),
			listDeliveries: vi.fn(async () => [delivery(1, 1, { channel_name: 'B' })]),
			createChannel: vi.fn(async () => channel(2, { name: 'A' })),
			updateChannel: vi.fn(async () => channel(1, { name: 'C', enabled: false }))
		});
		const state = new NotificationsState(api);
		await state.load();
		await state.create({ name: 'A', url: 'ntfy://topic' });
		expect(state.channels.map((c) => c.name)).toEqual(['A', 'B']);
		await state.update(1, { name: 'C', enabled: false });
		expect(api.updateChannel).toHaveBeenCalledWith(1, { name: 'C', enabled: false });
		expect(state.channels.map((c) => [c.name, c.enabled])).toEqual([
			['A', true],
			['C', false]
		]);
		expect(state.deliveries[0].channel_name).toBe('C');
	});

	it('a refused change leaves the channel as it was', async () => {
		const state = new NotificationsState(
			fakeApi({
				listChannels: vi.fn(async () => [channel(1)]),
				updateChannel: vi.fn(async () => {
					throw new ApiError(422, 'url: apprise knows no service with the scheme foo://', {});
				})
			})
		);
		await state.load();
		await expect(state.update(1, { url: 'foo://x' })).rejects.toThrow('foo://');
		expect(state.channels).toEqual([channel(1)]);
	});

	it('a test heads the log and is marked as running while it is sent', async () => {
		let finish: (d: Delivery) => void = () => {};
		const api = fakeApi({
			listChannels: vi.fn(async () => [channel(1)]),
			listDeliveries: vi.fn(async () => [delivery(3, 1)]),
			testChannel: vi.fn(() => new Promise<Delivery>((resolve) => (finish = resolve)))
		});
		const state = new NotificationsState(api);
		await state.load();
		const sent = state.test(1);
		expect(state.testing).toEqual([1]);
		finish(delivery(4, 1, { kind: 'test', event_id: null, status: 'failed', last_error: 'error=500' }));
		const result = await sent;
		expect(result.status).toBe('failed');
		expect(state.testing).toEqual([]);
		expect(state.deliveries.map((d) => d.id)).toEqual([4, 3]);
	});

	it('deleting a channel drops it and its deliveries', async () => {
		const api = fakeApi({
			listChannels: vi.fn(async () => [channel(1), channel(2)]),
			listDeliveries: vi.fn(async () => [delivery(2, 2), delivery(1, 1)])
		});
		const state = new NotificationsState(api);
		await state.load();
		await state.remove(1);
		expect(api.deleteChannel).toHaveBeenCalledWith(1);
		expect(state.channels.map((c) => c.id)).toEqual([2]);
		expect(state.deliveries.map((d) => d.id)).toEqual([2]);
	});
});
