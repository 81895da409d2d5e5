import { describe, expect, it, vi } from 'vitest';
import type { Approval, RunEvent } from '$lib/api/types';
import { FakeEventSource } from '$lib/test/fake-event-source';
import { isAtBottom, RunLog, type LogEntry, type RunLogOptions } from './run-log.svelte';

function ev(seq: number, type: RunEvent['type'], payload: Record<string, unknown> = {}): RunEvent {
	return { seq, type, payload, created_at: '2026-01-01T00:00:00Z' };
}

/** A log that publishes at once (no batching), unless a scheduler is given. */
function makeLog(options: RunLogOptions = {}) {
	return new RunLog(7, { schedule: (fn) => fn(), ...options });
}

function approval(id: number, status: Approval['status']): Approval {
	return {
		id,
		run_id: 7,
		tool_name: 'Bash',
		input: { command: 'python3 -c "print(1)"' },
		status,
		decision: status === 'pending' ? null : status === 'allowed' ? 'allow' : 'deny',
		message: null,
		created_at: '2026-01-01T00:00:00Z',
		decided_at: null
	};
}

const tools = (entries: LogEntry[]) => entries.filter((e) => e.kind === 'tool');

describe('RunLog: rows from events', () => {
	it('pairs each tool call with its result by tool_use_id, whatever comes in between', () => {
		const log = makeLog();
		log.ingest(ev(1, 'init', { model: 'claude', tools: ['Bash', 'Write'], permission_mode: 'acceptEdits' }));
		log.ingest(ev(2, 'text', { text: 'Writing two files' }));
		log.ingest(ev(3, 'tool_use', { id: 'tu_a', name: 'Write', input: { file_path: 'a.txt', content: 'a' } }));
		log.ingest(ev(4, 'tool_use', { id: 'tu_b', name: 'Bash', input: { command: 'ls' } }));
		log.ingest(ev(5, 'thinking', { text: 'hmm' }));
		log.ingest(ev(6, 'tool_result', { tool_use_id: 'tu_b', content: 'a.txt', is_error: false }));
		log.ingest(ev(7, 'tool_result', { tool_use_id: 'tu_a', content: 'denied', is_error: true }));

		expect(log.entries.map((e) => e.kind)).toEqual(['init', 'text', 'tool', 'tool', 'thinking']);
		const [a, b] = tools(log.entries);
		expect(a).toMatchObject({ id: 'tu_a', name: 'Write', input: { file_path: 'a.txt' }, result: { content: 'denied', isError: true, seq: 7 } });
		expect(b).toMatchObject({ id: 'tu_b', name: 'Bash', result: { content: 'a.txt', isError: false, seq: 6 } });
		expect(log.lastSeq).toBe(7);
	});

	it('a result without its call gets a row of its own, which the call fills in if it comes later', () => {
		const log = makeLog();
		log.ingest(ev(1, 'tool_result', { tool_use_id: 'tu_x', content: 'done' }));
		expect(tools(log.entries)).toHaveLength(1);
		expect(tools(log.entries)[0]).toMatchObject({ name: '', result: { content: 'done' } });
		log.ingest(ev(2, 'tool_use', { id: 'tu_x', name: 'Read', input: { file_path: 'x' } }));
		expect(tools(log.entries)).toHaveLength(1);
		expect(tools(log.entries)[0]).toMatchObject({ name: 'Read', input: { file_path: 'x' }, result: { content: 'done' } });
	});

	it('keeps one row per approval, updated when it is answered, and reports each to the owner', () => {
		const seen: Approval[] = [];
		const log = makeLog({ onApproval: (a) => seen.push(a) });
		log.ingest(ev(1, 'approval', approval(3, 'pending') as never));
		log.ingest(ev(2, 'text', { text: 'meanwhile' }));
		log.ingest(ev(3, 'approval', approval(3, 'allowed') as never));
		const rows = log.entries.filter((e) => e.kind === 'approval');
		expect(rows).toHaveLength(1);
		expect(rows[0]).toMatchObject({ seq: 1, approval: { id: 3, status: 'allowed' } });
		expect(seen.map((a) => a.status)).toEqual(['pending', 'allowed']);
	});

	it('turns result, error, status and system events into rows; quiet progress ticks into none', () => {
		const log = makeLog();
		log.ingest(ev(1, 'system', { subtype: 'thinking_tokens' }));
		log.ingest(ev(2, 'system', { subtype: 'api_retry' }));
		log.ingest(ev(3, 'error', { message: 'The model API reported: overloaded' }));
		log.ingest(ev(4, 'result', { is_error: false, subtype: 'success', cost_usd: 0.0123, turns: 3, duration_ms: 1500 }));
		log.ingest(ev(5, 'status', { status: 'succeeded' }));
		expect(log.entries.map((e) => e.kind)).toEqual(['system', 'error', 'result', 'status']);
		expect(log.entries[2]).toMatchObject({ costUsd: 0.0123, turns: 3, durationMs: 1500, isError: false });
		expect(log.lastSeq).toBe(5);
	});

	it("keeps one row per check: its start, then how it ended, with the attempt", () => {
		const log = makeLog();
		const attempt = { attempt: 2, max_attempts: 3 };
		log.ingest(ev(1, 'check', { command: 'make test', status: 'running', ...attempt }));
		expect(log.entries).toMatchObject([{ kind: 'check', status: 'running', exitCode: null, attempt: 2, maxAttempts: 3 }]);
		log.ingest(ev(2, 'check', {
			command: 'make test',
			status: 'failed',
			exit_code: 2,
			output: '1 failed',
			truncated: true,
			duration_ms: 1234,
			...attempt
		}));
		expect(log.entries).toHaveLength(1);
		expect(log.entries[0]).toMatchObject({
			kind: 'check',
			seq: 1,
			command: 'make test',
			status: 'failed',
			exitCode: 2,
			output: '1 failed',
			truncated: true,
			durationMs: 1234,
			attempt: 2
		});

		// A check step's own command: no attempt; an ending without its start is a row of its own.
		log.ingest(ev(3, 'check', { command: 'true', status: 'passed', exit_code: 0, output: '', duration_ms: 5, attempt: null }));
		log.ingest(ev(4, 'check', { command: 'sleep 9', status: 'running' }));
		log.ingest(ev(5, 'check', { command: 'sleep 9', status: 'timed_out', exit_code: null, duration_ms: 600000 }));
		expect(log.entries.map((e) => (e.kind === 'check' ? [e.command, e.status, e.attempt] : e.kind))).toEqual([
			['make test', 'failed', 2],
			['true', 'passed', null],
			['sleep 9', 'timed_out', null]
		]);
	});
});

describe('RunLog: replay', () => {
	it('applies each seq once: a replay after a reconnect repeats nothing', () => {
		const log = makeLog();
		const events = [
			ev(1, 'text', { text: 'one' }),
			ev(2, 'tool_use', { id: 'tu_1', name: 'Bash', input: { command: 'ls' } }),
			ev(3, 'tool_result', { tool_use_id: 'tu_1', content: 'ok' })
		];
		expect(events.map((e) => log.ingest(e))).toEqual([true, true, true]);
		// The server replays from an older id (or the same events twice): all ignored.
		expect(events.map((e) => log.ingest(e))).toEqual([false, false, false]);
		expect(log.ingest(ev(2, 'text', { text: 'stale' }))).toBe(false);
		expect(log.entries).toHaveLength(2);
		expect(log.ingest(ev(4, 'text', { text: 'four' }))).toBe(true);
		expect(log.entries).toHaveLength(3);
		expect(tools(log.entries)[0]).toMatchObject({ result: { content: 'ok', seq: 3 } });
	});

	it('publishes in batches: many events, one new array', () => {
		const pending: (() => void)[] = [];
		const log = new RunLog(7, { schedule: (fn) => pending.push(fn) });
		for (let seq = 1; seq <= 5000; seq++) log.ingest(ev(seq, 'text', { text: `line ${seq}` }));
		expect(pending).toHaveLength(1);
		expect(log.entries).toHaveLength(0);
		pending[0]();
		expect(log.entries).toHaveLength(5000);
		expect(log.lastSeq).toBe(5000);
	});
});

class FakeSource extends FakeEventSource {
	send(type: string, data: unknown, id?: number) {
		this.dispatch(type, { data: JSON.stringify(data), lastEventId: id == null ? '' : String(id) });
	}

	fail(readyState: number) {
		this.drop(readyState);
	}
}

describe('RunLog: live stream', () => {
	function streaming() {
		FakeEventSource.all = [];
		vi.useFakeTimers();
		const urls: [number, number][] = [];
		const log = makeLog({
			create: (url) => new FakeSource(url) as never,
			url: (runId, after) => {
				urls.push([runId, after]);
				return `/stream/${runId}?after=${after}`;
			},
			backoff: () => 100
		});
		return { log, urls, source: () => FakeSource.all.at(-1)! as FakeSource };
	}

	it('streams, resumes after the last seq when the browser gives up, and stops at `end`', () => {
		const { log, urls, source } = streaming();
		log.connect();
		expect(urls).toEqual([[7, 0]]);
		source().open();
		expect(log.connection).toBe('open');
		source().send('text', ev(1, 'text', { text: 'hello' }), 1);
		source().send('tool_use', ev(2, 'tool_use', { id: 'tu', name: 'Write', input: {} }), 2);
		// A run event named `error` is a row, not a broken connection.
		source().send('error', ev(3, 'error', { message: 'boom' }), 3);
		expect(log.connection).toBe('open');
		expect(log.entries.map((e) => e.kind)).toEqual(['text', 'tool', 'error']);

		// Dropped for good (e.g. a proxy error): a new stream after seq 3, once the backoff passes.
		const first = source();
		first.fail(2);
		expect(log.connection).toBe('reconnecting');
		vi.advanceTimersByTime(100);
		expect(FakeSource.all).toHaveLength(2);
		expect(urls.at(-1)).toEqual([7, 3]);
		expect(first.closed).toBe(true);

		// The old stream is ignored; the new one may overlap what we have.
		first.send('text', ev(9, 'text', { text: 'ghost' }), 9);
		source().open();
		source().send('tool_use', ev(2, 'tool_use', { id: 'tu', name: 'Write', input: {} }), 2);
		source().send('tool_result', ev(4, 'tool_result', { tool_use_id: 'tu', content: 'ok' }), 4);
		source().send('end', { status: 'succeeded' });
		expect(log.connection).toBe('ended');
		expect(log.ended).toBe(true);
		expect(source().closed).toBe(true);
		expect(log.entries).toHaveLength(3);
		expect(tools(log.entries)[0]).toMatchObject({ result: { content: 'ok' } });

		log.connect(); // an ended log does not stream again
		expect(FakeSource.all).toHaveLength(2);
		vi.useRealTimers();
	});

	it('leaves transient drops to the browser (it resends Last-Event-ID itself)', () => {
		const { log, source } = streaming();
		log.connect();
		source().open();
		source().fail(0); // CONNECTING: the browser retries
		vi.advanceTimersByTime(1000);
		expect(FakeSource.all).toHaveLength(1);
		expect(log.connection).toBe('reconnecting');
		source().open();
		expect(log.connection).toBe('open');
		log.close();
		expect(source().closed).toBe(true);
		vi.useRealTimers();
	});
});

describe('RunLog: following the tail', () => {
	it('follows until the user scrolls up, counts what arrives meanwhile, and resumes at the bottom', () => {
		const log = makeLog();
		expect(log.follow).toBe(true);
		log.ingest(ev(1, 'text', { text: 'a' }));
		expect(log.unseen).toBe(0);

		log.scrolled(false);
		expect(log.follow).toBe(false);
		log.ingest(ev(2, 'text', { text: 'b' }));
		log.ingest(ev(3, 'text', { text: 'c' }));
		log.ingest(ev(4, 'tool_result', { tool_use_id: 'nope', content: '' }));
		expect(log.unseen).toBe(3);

		log.scrolled(true);
		expect(log.follow).toBe(true);
		expect(log.unseen).toBe(0);

		log.scrolled(false);
		log.ingest(ev(5, 'text', { text: 'd' }));
		expect(log.unseen).toBe(1);
		log.jumpToLatest();
		expect(log.follow).toBe(true);
		expect(log.unseen).toBe(0);
	});

	it('counts as "at the bottom" within a small threshold', () => {
		expect(isAtBottom(900, 1500, 600)).toBe(true);
		expect(isAtBottom(860, 1500, 600)).toBe(true);
		expect(isAtBottom(800, 1500, 600)).toBe(false);
		expect(isAtBottom(0, 400, 600)).toBe(true); // shorter than the view
	});
});
