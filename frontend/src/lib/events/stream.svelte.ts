import { eventsUrl } from '$lib/api/client';
import { EVENT_TYPES, type BoardEvent } from '$lib/api/types';
import { ReconnectingSource, type EventSourceFactory, type SourceStatus } from './source.svelte';

export type StreamStatus = SourceStatus;
export type { EventSourceFactory };

type Options = {
	/** Create the EventSource (tests pass a fake). */
	create?: EventSourceFactory;
	/** Build the URL (tests pass a plain function; the app adds the token). */
	url?: (projectId: number, lastEventId: number | null) => string;
	/** Delay before recreating a closed EventSource, by attempt number. */
	backoff?: (attempt: number) => number;
};

/**
 * ONE EventSource per board. Named events are parsed and handed to `onEvent`; the last event id
 * is tracked. The browser resends it on its own reconnects; when we have to recreate the
 * EventSource (it closed for good, or the server asked us to reconnect) we pass
 * `&last_event_id=N` so the server replays what we missed.
 */
export class EventStream {
	lastEventId = $state<number | null>(null);

	#source: ReconnectingSource;
	#projectId: number | null = null;
	#onEvent: (event: BoardEvent) => void = () => {};
	#onResync: () => void = () => {};

	constructor(options: Options = {}) {
		const url = options.url ?? eventsUrl;
		this.#source = new ReconnectingSource({
			url: () => url(this.#projectId!, this.lastEventId),
			events: [...EVENT_TYPES, 'reconnect'],
			onMessage: (type, message) => (type === 'reconnect' ? this.#source.restart() : this.#handle(message)),
			onOpen: ({ recreated }) => {
				if (recreated) this.#onResync();
			},
			create: options.create,
			backoff: options.backoff ?? ((n) => Math.min(1000 * 2 ** n, 15000))
		});
	}

	get status(): StreamStatus {
		return this.#source.status;
	}

	/** When the stream went down (ms since epoch), for the connection indicator. */
	get downSince(): number | null {
		return this.#source.downSince;
	}

	get projectId() {
		return this.#projectId;
	}

	/**
	 * Connect to a board's stream. `onResync` runs after the EventSource had to be recreated, so
	 * the caller can refetch in case the server could not replay everything. `after` is the
	 * event cursor of the board snapshot shown (its `last_event_id`): the server replays what
	 * came after it, so nothing falls between the snapshot and the stream.
	 */
	connect = (
		projectId: number,
		onEvent: (event: BoardEvent) => void,
		onResync: () => void = () => {},
		after: number | null = null
	) => {
		if (this.#projectId !== projectId) this.lastEventId = after;
		this.#projectId = projectId;
		this.#onEvent = onEvent;
		this.#onResync = onResync;
		this.#source.open();
	};

	/** Recreate the EventSource now (e.g. after the API token changed), resuming from the last id. */
	restart = () => {
		if (this.#projectId == null) return;
		this.#source.restart();
	};

	disconnect = () => {
		this.#source.close();
		this.#projectId = null;
	};

	#handle(message: MessageEvent) {
		let event: BoardEvent;
		try {
			event = JSON.parse(message.data) as BoardEvent;
		} catch {
			return;
		}
		const id = Number(message.lastEventId || event.id);
		if (Number.isFinite(id)) {
			if (this.lastEventId != null && id <= this.lastEventId) return; // already applied
			this.lastEventId = id;
		}
		const typed = event as { type?: string };
		if (!typed.type) typed.type = message.type;
		this.#onEvent(event);
	}
}

export const stream = new EventStream();
