/**
 * The app's one reconnecting EventSource. The board stream, a run's log and the Plugin Manager
 * each own one; they decide what a message means, this decides when to reconnect.
 *
 * While the EventSource is CONNECTING after an error the browser retries by itself (and resends
 * `Last-Event-ID`). When it gave up (CLOSED: an HTTP error, a bad content type) a new one is
 * created after a backoff, with the URL the owner builds for resuming. Messages and callbacks
 * of an EventSource that was replaced are ignored.
 */

export type SourceStatus = 'idle' | 'connecting' | 'open' | 'reconnecting';

export type EventSourceLike = Pick<EventSource, 'addEventListener' | 'close' | 'readyState'> & {
	onopen: ((this: EventSource, ev: Event) => unknown) | null;
	onerror: ((this: EventSource, ev: Event) => unknown) | null;
};
export type EventSourceFactory = (url: string) => EventSourceLike;

export type SourceOptions = {
	/** The URL to open; `resuming` when the EventSource is recreated after one was lost or restarted. */
	url: (resuming: boolean) => string;
	/** The named events to listen for. */
	events: readonly string[];
	/** A named event of the current EventSource (a MessageEvent, unless a test sends something else). */
	onMessage: (type: string, message: MessageEvent) => void;
	/**
	 * The stream is open. `recreated`: on a new EventSource after the previous one was lost or
	 * restarted; `afterError`: the connection had dropped since it last opened.
	 */
	onOpen?: (how: { recreated: boolean; afterError: boolean }) => void;
	/** Create the EventSource (tests pass a fake). */
	create?: EventSourceFactory;
	/** Delay before recreating a CLOSED EventSource, by attempt number. */
	backoff: (attempt: number) => number;
};

const CLOSED = 2;

export class ReconnectingSource {
	status = $state<SourceStatus>('idle');
	/** When the stream went down (ms since epoch), for the connection indicator. */
	downSince = $state<number | null>(null);

	#options: SourceOptions;
	#create: EventSourceFactory;
	#source: EventSourceLike | null = null;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#attempt = 0;
	#dropped = false;

	constructor(options: SourceOptions) {
		this.#options = options;
		this.#create = options.create ?? ((url) => new EventSource(url));
	}

	get active(): boolean {
		return this.#source != null;
	}

	/** Open a fresh stream (closing any current one). */
	open = () => {
		this.close();
		this.#attempt = 0;
		this.#dropped = false;
		this.#open(false);
	};

	/** Recreate the EventSource now, resuming (the token changed, the server asked to reconnect). */
	restart = () => {
		this.#closeSource();
		this.#open(true);
	};

	close = () => {
		this.#closeSource();
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
		if (this.status !== 'reconnecting') this.status = 'connecting';
		const source = this.#create(this.#options.url(resuming));
		this.#source = source;
		const mine = () => this.#source === source;
		let recreated = resuming;

		source.onopen = () => {
			if (!mine()) return;
			this.status = 'open';
			this.downSince = null;
			this.#attempt = 0;
			const how = { recreated, afterError: this.#dropped };
			recreated = false;
			this.#dropped = false;
			this.#options.onOpen?.(how);
		};
		source.onerror = (e: Event) => {
			if (!mine()) return;
			// A message named `error` arrives on the same handler as connection errors.
			if (e instanceof MessageEvent && typeof e.data === 'string' && e.data) return;
			this.#dropped = true;
			if (this.status !== 'reconnecting') {
				this.status = 'reconnecting';
				this.downSince = Date.now();
			}
			if (source.readyState === CLOSED) this.#scheduleReopen(source);
		};
		for (const type of this.#options.events) {
			source.addEventListener(type, (e) => {
				if (mine()) this.#options.onMessage(type, e as MessageEvent);
			});
		}
	}

	#scheduleReopen(source: EventSourceLike) {
		source.close();
		const delay = this.#options.backoff(this.#attempt++);
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = setTimeout(() => {
			this.#timer = null;
			if (this.#source !== source) return;
			this.#source = null;
			this.#open(true);
		}, delay);
	}
}
