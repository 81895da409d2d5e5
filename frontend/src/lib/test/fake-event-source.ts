/** An EventSource for tests: the test opens it, drops it and dispatches its messages. */
export class FakeEventSource {
	/** Every instance created since the test last reset this list. */
	static all: FakeEventSource[] = [];
	readyState = 0;
	onopen: ((ev: Event) => unknown) | null = null;
	onerror: ((ev: Event) => unknown) | null = null;
	closed = false;
	listeners = new Map<string, ((e: Event) => void)[]>();

	constructor(public url: string) {
		FakeEventSource.all.push(this);
	}

	addEventListener(type: string, fn: (e: Event) => void) {
		this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
	}

	close() {
		this.closed = true;
		this.readyState = 2;
	}

	open() {
		this.readyState = 1;
		this.onopen?.(new Event('open'));
	}

	/** A message named `type`; one named `error` also reaches `onerror`, as in browsers. */
	dispatch(type: string, init: MessageEventInit) {
		const message = new MessageEvent(type, init);
		for (const fn of this.listeners.get(type) ?? []) fn(message);
		if (type === 'error') this.onerror?.(message);
	}

	/** The connection drops; `readyState` 0 (CONNECTING: the browser retries) or 2 (CLOSED). */
	drop(readyState: number) {
		this.readyState = readyState;
		this.onerror?.(new Event('error'));
	}
}
