import { runStreamUrl } from '$lib/api/client';
import type { Approval, RunEvent } from '$lib/api/types';

/** Named events of `GET /api/runs/{id}/stream` (plus `end`, sent once the run is over). */
export const RUN_EVENT_TYPES = [
	'init',
	'text',
	'thinking',
	'tool_use',
	'tool_result',
	'user',
	'approval',
	'result',
	'error',
	'status',
	'system'
] as const;

export type ToolResult = { seq: number; content: string; isError: boolean };

type Base = { key: number; seq: number };
export type LogEntry = Base &
	(
		| { kind: 'init'; model: string | null; cwd: string | null; tools: number; permissionMode: string | null }
		| { kind: 'text' | 'thinking' | 'user'; text: string }
		| { kind: 'tool'; id: string; name: string; input: Record<string, unknown> | null; result: ToolResult | null }
		| { kind: 'approval'; approval: Approval }
		| {
				kind: 'result';
				isError: boolean;
				subtype: string | null;
				text: string;
				costUsd: number | null;
				turns: number | null;
				durationMs: number | null;
				inputTokens: number | null;
				outputTokens: number | null;
				errors: string[];
		  }
		| { kind: 'error'; message: string }
		| { kind: 'status'; status: string; start: number | null }
		| { kind: 'system'; subtype: string }
	);

export type LogConnection = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'ended';

type EventSourceLike = Pick<EventSource, 'addEventListener' | 'close' | 'readyState'> & {
	onopen: ((this: EventSource, ev: Event) => unknown) | null;
	onerror: ((this: EventSource, ev: Event) => unknown) | null;
};

export type RunLogOptions = {
	/** Create the EventSource (tests pass a fake). */
	create?: (url: string) => EventSourceLike;
	/** The stream URL, resuming after `lastSeq` (the app adds the API token). */
	url?: (runId: number, lastSeq: number) => string;
	/** Run `fn` soon: entries are published in batches, not once per event. */
	schedule?: (fn: () => void) => void;
	/** Delay before recreating a stream the browser gave up on, by attempt. */
	backoff?: (attempt: number) => number;
	/** Told about every approval the log sees (requested and answered). */
	onApproval?: (approval: Approval) => void;
};

const CLOSED = 2;
/** System notices that say nothing to a person (progress ticks while the model thinks). */
const QUIET_SYSTEM = new Set(['thinking_tokens']);
/** Within this many pixels of the bottom counts as "at the end": the log keeps following. */
export const FOLLOW_THRESHOLD_PX = 48;

export function isAtBottom(scrollTop: number, scrollHeight: number, clientHeight: number, threshold = FOLLOW_THRESHOLD_PX) {
	return scrollHeight - scrollTop - clientHeight <= threshold;
}

function str(value: unknown): string {
	return typeof value === 'string' ? value : value == null ? '' : String(value);
}

function num(value: unknown): number | null {
	return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * One run's event log, as rows to show: tool calls carry their results (paired by
 * `tool_use_id`), an approval is one row that changes when it is answered. Events are applied
 * once each, in `seq` order: a replay after a reconnect (Last-Event-ID) repeats nothing.
 * New rows are published in batches (one per frame), so thousands of events stay cheap.
 */
export class RunLog {
	readonly runId: number;
	/** The rows, replaced (never mutated) on each batch. */
	entries = $state.raw<LogEntry[]>([]);
	/** Events applied so far (the newest `seq`). */
	lastSeq = $state(0);
	connection = $state<LogConnection>('idle');
	/** The view keeps the newest row in sight until the user scrolls up. */
	follow = $state(true);
	/** Rows that arrived while the user was scrolled up. */
	unseen = $state(0);

	#items: LogEntry[] = [];
	#tools = new Map<string, number>();
	#approvals = new Map<number, number>();
	#seq = 0;
	#dirty = false;
	#scheduled = false;
	#source: EventSourceLike | null = null;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#attempt = 0;
	#create: (url: string) => EventSourceLike;
	#url: (runId: number, lastSeq: number) => string;
	#schedule: (fn: () => void) => void;
	#backoff: (attempt: number) => number;
	#onApproval: (approval: Approval) => void;

	constructor(runId: number, options: RunLogOptions = {}) {
		this.runId = runId;
		this.#create = options.create ?? ((url) => new EventSource(url));
		this.#url = options.url ?? runStreamUrl;
		this.#schedule = options.schedule ?? ((fn) => setTimeout(fn, 16));
		this.#backoff = options.backoff ?? ((n) => Math.min(500 * 2 ** n, 10_000));
		this.#onApproval = options.onApproval ?? (() => {});
	}

	get ended(): boolean {
		return this.connection === 'ended';
	}

	/** Apply one event. Returns false for an event already applied (same or older `seq`). */
	ingest = (event: RunEvent): boolean => {
		if (!(event.seq > this.#seq)) return false;
		this.#seq = event.seq;
		this.#apply(event);
		this.#dirty = true;
		if (!this.#scheduled) {
			this.#scheduled = true;
			this.#schedule(() => {
				this.#scheduled = false;
				this.commit();
			});
		}
		return true;
	};

	/** Publish the rows applied since the last batch. */
	commit = () => {
		if (!this.#dirty) return;
		this.#dirty = false;
		const added = this.#items.length - this.entries.length;
		this.entries = this.#items.slice();
		this.lastSeq = this.#seq;
		if (!this.follow && added > 0) this.unseen += added;
	};

	/** The view scrolled: following resumes only at the bottom. */
	scrolled = (atBottom: boolean) => {
		if (atBottom === this.follow) return;
		this.follow = atBottom;
		if (atBottom) this.unseen = 0;
	};

	jumpToLatest = () => {
		this.follow = true;
		this.unseen = 0;
	};

	#push(entry: LogEntry): number {
		this.#items.push(entry);
		return this.#items.length - 1;
	}

	#replace(index: number, entry: LogEntry) {
		this.#items[index] = entry;
	}

	#apply(event: RunEvent) {
		const p = event.payload ?? {};
		const base = { key: event.seq, seq: event.seq };
		switch (event.type) {
			case 'init':
				this.#push({
					...base,
					kind: 'init',
					model: str(p.model) || null,
					cwd: str(p.cwd) || null,
					tools: Array.isArray(p.tools) ? p.tools.length : 0,
					permissionMode: str(p.permission_mode) || null
				});
				return;
			case 'text':
			case 'thinking':
			case 'user':
				this.#push({ ...base, kind: event.type, text: str(p.text) });
				return;
			case 'tool_use': {
				const id = str(p.id) || `seq-${event.seq}`;
				const input = p.input && typeof p.input === 'object' ? (p.input as Record<string, unknown>) : null;
				const at = this.#tools.get(id);
				if (at !== undefined) {
					// Its result came first: the call fills in the row that result made.
					const held = this.#items[at];
					if (held.kind === 'tool') this.#replace(at, { ...held, name: str(p.name), input });
					return;
				}
				this.#tools.set(id, this.#push({ ...base, kind: 'tool', id, name: str(p.name), input, result: null }));
				return;
			}
			case 'tool_result': {
				const id = str(p.tool_use_id);
				const result: ToolResult = { seq: event.seq, content: str(p.content), isError: p.is_error === true };
				const at = id ? this.#tools.get(id) : undefined;
				const held = at === undefined ? undefined : this.#items[at];
				if (at !== undefined && held?.kind === 'tool') {
					this.#replace(at, { ...held, result });
					return;
				}
				const index = this.#push({ ...base, kind: 'tool', id: id || `seq-${event.seq}`, name: '', input: null, result });
				if (id) this.#tools.set(id, index);
				return;
			}
			case 'approval': {
				const approval = p as unknown as Approval;
				if (typeof approval.id !== 'number') return;
				this.#onApproval(approval);
				const at = this.#approvals.get(approval.id);
				if (at !== undefined) {
					this.#replace(at, { ...(this.#items[at] as Base), kind: 'approval', approval });
					return;
				}
				this.#approvals.set(approval.id, this.#push({ ...base, kind: 'approval', approval }));
				return;
			}
			case 'result':
				this.#push({
					...base,
					kind: 'result',
					isError: p.is_error === true,
					subtype: str(p.subtype) || null,
					text: str(p.result),
					costUsd: num(p.cost_usd),
					turns: num(p.turns),
					durationMs: num(p.duration_ms),
					inputTokens: num(p.input_tokens),
					outputTokens: num(p.output_tokens),
					errors: Array.isArray(p.errors) ? p.errors.map(str) : []
				});
				return;
			case 'error':
				this.#push({ ...base, kind: 'error', message: str(p.message) || 'Unknown error' });
				return;
			case 'status':
				this.#push({ ...base, kind: 'status', status: str(p.status), start: num(p.start) });
				return;
			default: {
				const subtype = str(p.subtype) || event.type;
				if (!QUIET_SYSTEM.has(subtype)) this.#push({ ...base, kind: 'system', subtype });
			}
		}
	}

	// ---- live stream ----------------------------------------------------------------------

	/** Stream the run's events (all of them the first time; after a reconnect, what was missed). */
	connect = () => {
		if (this.#source || this.connection === 'ended') return;
		this.#open();
	};

	/** The run goes on after its stream ended (a resumed run): stream what comes after. */
	reopen = () => {
		if (this.connection !== 'ended') return;
		this.connection = 'idle';
		this.connect();
	};

	close = () => {
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = null;
		this.#source?.close();
		this.#source = null;
		if (this.connection !== 'ended') this.connection = 'idle';
	};

	#open() {
		const source = this.#create(this.#url(this.runId, this.#seq));
		this.#source = source;
		if (this.connection !== 'reconnecting') this.connection = 'connecting';
		const mine = () => this.#source === source;

		source.onopen = () => {
			if (!mine()) return;
			this.connection = 'open';
			this.#attempt = 0;
		};
		source.onerror = (e: Event) => {
			if (!mine()) return;
			// A run event named `error` arrives on the same listener as connection errors.
			if (e instanceof MessageEvent && typeof e.data === 'string' && e.data) return;
			this.connection = 'reconnecting';
			// CONNECTING: the browser retries by itself and sends Last-Event-ID.
			// CLOSED: it gave up; open a new stream after the last event we have.
			if (source.readyState === CLOSED) {
				source.close();
				const delay = this.#backoff(this.#attempt++);
				if (this.#timer) clearTimeout(this.#timer);
				this.#timer = setTimeout(() => {
					this.#timer = null;
					if (mine()) this.#open();
				}, delay);
			}
		};
		for (const type of RUN_EVENT_TYPES) {
			source.addEventListener(type, (e) => {
				if (!mine() || !(e instanceof MessageEvent) || typeof e.data !== 'string' || !e.data) return;
				let event: RunEvent;
				try {
					event = JSON.parse(e.data) as RunEvent;
				} catch {
					return;
				}
				if (typeof event.seq !== 'number') event.seq = Number(e.lastEventId);
				if (!event.type) event.type = type;
				this.ingest(event);
			});
		}
		source.addEventListener('end', () => {
			if (!mine()) return;
			source.close();
			this.#source = null;
			this.commit();
			this.connection = 'ended';
		});
	}
}
