import { eventsUrl } from '$lib/api/client';
import { EVENT_TYPES, type BoardEvent } from '$lib/api/types';

export type StreamStatus = 'idle' | 'connecting' | 'open' | 'reconnecting';

type EventSourceLike = Pick<EventSource, 'addEventListener' | 'close' | 'readyState'> & {
	onopen: ((this: EventSource, ev: Event) => unknown) | null;
	onerror: ((this: EventSource, ev: Event) => unknown) | null;
};
export type EventSourceFactory = (url: string) => EventSourceLike;

type Options = {
	/** Create the EventSource (tests pass a fake). */
	create?: EventSourceFactory;
	/** Build the URL (tests pass a plain function; the app adds the token). */
	url?: (projectId: number, lastEventId: number | null) => string;
	/** Delay before recreating a closed EventSource, by attempt number. */
	backoff?: (attempt: number) => number;
};

const CLOSED = 2;

/**
 * ONE EventSource per board. Named events are parsed and handed to `onEvent`; the last event id
 * is tracked. The browser resends it on its own reconnects; when we have to recreate the
 * EventSource (it closed for good, or the server asked us to reconnect) we pass
 * `&last_event_id=N` so the server replays what we missed.
 */
export class EventStream {
	status = $state<StreamStatus>('idle');
	lastEventId = $state<number | null>(null);
	/** When the stream went down (ms since epoch), for the connection indicator. */
	downSince = $state<number | null>(null);

	#source: EventSourceLike | null = null;
	#projectId: number | null = null;
	#onEvent: (event: BoardEvent) => void = () => {};
	#onResync: () => void = () => {};
	#attempt = 0;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#create: EventSourceFactory;
	#url: (projectId: number, lastEventId: number | null) => string;
	#backoff: (attempt: number) => number;

	constructor(options: Options = {}) {
		this.#create = options.create ?? ((url) => new EventSource(url));
		this.#url = options.url ?? eventsUrl;
		this.#backoff = options.backoff ?? ((n) => Math.min(1000 * 2 ** n, 15000));
	}

	get projectId() {
		return this.#projectId;
	}

	/**
	 * Connect to a board's stream. `onResync` runs after the EventSource had to be recreated, so
	 * the caller can refetch in case the server could not replay everything.
	 */
	connect = (
		projectId: number,
		onEvent: (event: BoardEvent) => void,
		onResync: () => void = () => {}
	) => {
		if (this.#projectId !== projectId) this.lastEventId = null;
		this.disconnect();
		this.#projectId = projectId;
		this.#onEvent = onEvent;
		this.#onResync = onResync;
		this.#attempt = 0;
		this.#open(false);
	};

	/** Recreate the EventSource now (e.g. after the API token changed), resuming from the last id. */
	restart = () => {
		if (this.#projectId == null) return;
		this.#closeSource();
		this.#open(true);
	};

	disconnect = () => {
		this.#closeSource();
		this.#projectId = null;
		this.status = 'idle';
		this.downSince = null;
	};

	#closeSource() {
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = null;
		this.#source?.close();
		this.#source = null;
	}

	#open(resuming: boolean) {
		const projectId = this.#projectId;
		if (projectId == null) return;
		if (this.status !== 'reconnecting') this.status = 'connecting';
		const source = this.#create(this.#url(projectId, resuming ? this.lastEventId : null));
		this.#source = source;
		let resynced = !resuming;

		source.onopen = () => {
			if (this.#source !== source) return;
			this.status = 'open';
			this.downSince = null;
			this.#attempt = 0;
			if (!resynced) {
				resynced = true;
				this.#onResync();
			}
		};
		source.onerror = () => {
			if (this.#source !== source) return;
			if (this.status !== 'reconnecting') {
				this.status = 'reconnecting';
				this.downSince = Date.now();
			}
			// CONNECTING: the browser retries by itself (and resends Last-Event-ID).
			// CLOSED: it gave up (HTTP error, bad content type): recreate it ourselves.
			if (source.readyState === CLOSED) this.#scheduleReopen();
		};
		for (const type of EVENT_TYPES) {
			source.addEventListener(type, (e) => this.#handle(source, e as MessageEvent));
		}
		source.addEventListener('reconnect', () => {
			if (this.#source !== source) return;
			this.#closeSource();
			this.#open(true);
		});
	}

	#scheduleReopen() {
		this.#source?.close();
		const delay = this.#backoff(this.#attempt++);
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = setTimeout(() => {
			this.#timer = null;
			this.#source = null;
			this.#open(true);
		}, delay);
	}

	#handle(source: EventSourceLike, message: MessageEvent) {
		if (this.#source !== source) return;
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
