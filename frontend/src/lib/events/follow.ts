import { eventsUrl } from '$lib/api/client';
import { ReconnectingSource } from './source.svelte';

/**
 * Follow some event types of the live stream without `?project_id` (plugins and knowledge
 * collections belong to no single project). `onEvent` gets each event's type and payload;
 * `onResync` runs after a reconnect, so the caller can refetch what it may have missed.
 * Returns the function that stops following.
 */
export function followEvents<E extends { type: string; payload: unknown }>(
	types: readonly E['type'][],
	onEvent: (event: E) => void,
	onResync: () => void,
	create: (url: string) => EventSource = (url) => new EventSource(url)
): () => void {
	const source = new ReconnectingSource({
		url: () => eventsUrl(null),
		events: types,
		onMessage: (type, message) => {
			try {
				const data = JSON.parse(message.data) as { payload: unknown };
				onEvent({ type, payload: data.payload } as E);
			} catch {
				/* not JSON: ignore */
			}
		},
		onOpen: ({ afterError }) => {
			if (afterError) onResync();
		},
		create,
		backoff: (n) => Math.min(1000 * 2 ** n, 15000)
	});
	source.open();
	return source.close;
}
