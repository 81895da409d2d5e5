import { runStreamUrl } from '$lib/api/client';
import { RUN_EVENT_TYPES, type Approval, type RunEvent, type RunStreamEvent } from '$lib/api/types';
import { ReconnectingSource, type EventSourceFactory } from '$lib/events/source.svelte';

export { RUN_EVENT_TYPES };

export type ToolResult = { seq: number; content: string; isError: boolean };

type Base = { key: number; seq: number };
/** A workflow check: its start, then (the same row) how it ended. */
export type CheckStatus = 'running' | 'passed' | 'failed' | 'timed_out';
export type CheckRow = {
	command: string;
	status: CheckStatus;
	exitCode: number | null;
	output: string;
	truncated: boolean;
	durationMs: number | null;
	attempt: number | null;
	maxAttempts: number | null;
};
const CHECK_STATUSES = new Set<string>(['running', 'passed', 'failed', 'timed_out']);
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
		| ({ kind: 'check' } & CheckRow)
		| { kind: 'status'; status: string; start: number | null }
		| { kind: 'system'; subtype: string }
	);

export type LogConnection = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'ended';

export type RunLogOptions = {
	/** Create the EventSource (tests pass a fake). */
	create?: EventSourceFactory;
	/** The stream URL, resuming after `lastSeq` (the app adds the API token). */
	url?: (runId: number, lastSeq: number) => string;
	/** Run `fn` soon: entries are published in batches, not once per event. */
	schedule?: (fn: () => void) => void;
	/** Delay before recreating a stream the browser gave up on, by attempt. */
	backoff?: (attempt: number) => number;
	/** Told about every approval the log sees (requested and answered). */
	onApproval?: (approval: Approval) => void;
};

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
	/** The stream's state; `ended` once the run is over and every event was received. */
	get connection(): LogConnection {
		return this.#ended ? 'ended' : this.#source.status;
	}
	/** The view keeps the newest row in sight until the user scrolls up. */
	follow = $state(true);
	/** Rows that arrived while the user was scrolled up. */
	unseen = $state(0);

	#items: LogEntry[] = [];
	#tools = new Map<string, number>();
	#approvals = new Map<number, number>();
	/** The row of the check that started and has not ended yet. */
	#openCheck: number | null = null;
	#seq = 0;
	#dirty = false;
	#scheduled = false;
	#ended = $state(false);
	#source: ReconnectingSource;
	#schedule: (fn: () => void) => void;
	#onApproval: (approval: Approval) => void;

	constructor(runId: number, options: RunLogOptions = {}) {
		this.runId = runId;
		const url = options.url ?? runStreamUrl;
		this.#schedule = options.schedule ?? ((fn) => setTimeout(fn, 16));
		this.#onApproval = options.onApproval ?? (() => {});
		// Every (re)connection asks for what comes after the newest event applied.
		this.#source = new ReconnectingSource({
			url: () => url(this.runId, this.#seq),
			events: [...RUN_EVENT_TYPES, 'end'],
			onMessage: (type, message) => (type === 'end' ? this.#end() : this.#receive(type, message)),
			create: options.create,
			backoff: options.backoff ?? ((n) => Math.min(500 * 2 ** n, 10_000))
		});
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
			case 'check': {
				const status = (CHECK_STATUSES.has(str(p.status)) ? str(p.status) : 'failed') as CheckStatus;
				const row: CheckRow = {
					command: str(p.command),
					status,
					exitCode: num(p.exit_code),
					output: str(p.output),
					truncated: p.truncated === true,
					durationMs: num(p.duration_ms),
					attempt: num(p.attempt),
					maxAttempts: num(p.max_attempts)
				};
				const at = this.#openCheck;
				const held = at === null ? undefined : this.#items[at];
				if (status !== 'running' && at !== null && held?.kind === 'check' && held.command === row.command) {
					this.#replace(at, { ...held, ...row });
					this.#openCheck = null;
					return;
				}
				const index = this.#push({ ...base, kind: 'check', ...row });
				this.#openCheck = status === 'running' ? index : null;
				return;
			}
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
		if (this.#source.active || this.#ended) return;
		this.#source.open();
	};

	/** The run goes on after its stream ended (a resumed run): stream what comes after. */
	reopen = () => {
		if (!this.#ended) return;
		this.#ended = false;
		this.connect();
	};

	close = () => {
		this.#source.close();
	};

	#receive(type: string, message: MessageEvent) {
		if (!(message instanceof MessageEvent) || typeof message.data !== 'string' || !message.data) return;
		let event: RunStreamEvent;
		try {
			event = JSON.parse(message.data) as RunStreamEvent;
		} catch {
			return;
		}
		if (typeof event.seq !== 'number') event.seq = Number(message.lastEventId);
		if (!event.type) event.type = type as RunStreamEvent['type'];
		this.ingest(event);
	}

	#end() {
		this.#source.close();
		this.commit();
		this.#ended = true;
	}
}
