import { describe, expect, it, vi } from 'vitest';
import { flushSync } from 'svelte';
import type { Run, RunEvent, RunEventPage } from '$lib/api/types';
import { makeRun } from '$lib/test/fixtures';
import { assemble, attemptIndex, attemptLabel, formatClock, type AttemptState, type ConversationRow } from './conversation';
import { TaskConversation } from './conversation.svelte';
import { RunLog, type LogEntry } from './run-log.svelte';

const NOW = new Date(2026, 11, 2, 18, 30);
const at = (hours: number, minutes: number) => new Date(2026, 11, 2, hours, minutes).toISOString();

const first = makeRun(11, 1, 'succeeded', { attempt: 1, reason: 'start', created_at: at(13, 50) });
const second = makeRun(14, 1, 'succeeded', { attempt: 2, reason: 'changes_requested', created_at: at(14, 2) });
const third = makeRun(20, 1, 'running', { attempt: 3, reason: 'check_failed', created_at: at(14, 9) });

function text(key: number, value: string): LogEntry {
	return { key, seq: key, kind: 'text', text: value };
}

function state(extra: Partial<AttemptState> = {}): AttemptState {
	return { prompt: null, entries: [], more: false, loading: false, error: null, ended: true, ...extra };
}

const kinds = (rows: ConversationRow[]) =>
	rows.map((row) => (row.kind === 'entry' ? `${row.run.attempt}:${row.entry.kind}` : `${row.run.attempt}:${row.kind}`));

describe('attempt labels', () => {
	it('name the attempt, why it ran and when: the one numbering the board uses', () => {
		const clock = formatClock(second.created_at, NOW);
		expect(attemptLabel(second, NOW)).toBe(`Attempt 2 · requested changes · ${clock}`);
		expect(attemptLabel(first, NOW)).toMatch(/^Attempt 1 · started · /);
		expect(attemptLabel({ ...first, attempt: 4 }, NOW)).toMatch(/^Attempt 4 · run again · /);
		expect(attemptLabel(third, NOW)).toMatch(/^Attempt 3 · check failed · /);
		expect(attemptLabel({ ...first, kind: 'check', attempt: 2 }, NOW)).toMatch(/^Attempt 2 · check · /);
		expect(attemptLabel(second, NOW)).not.toContain(String(second.id));
	});

	it('give the day too when the attempt was not today', () => {
		expect(formatClock(at(14, 2), NOW)).not.toBe(formatClock(new Date(2026, 10, 28, 14, 2).toISOString(), NOW));
		expect(formatClock('not a date', NOW)).toBe('');
	});
});

describe('assemble', () => {
	it('puts every attempt in order, oldest first, each opening with what the agent was told', () => {
		const states = new Map([
			[first.id, state({ prompt: 'You are working on task KAN-1', entries: [text(1, 'one'), text(2, 'two')] })],
			[second.id, state({ prompt: 'Greet the world', entries: [text(1, 'again')] })]
		]);
		const rows = assemble([second, first], states, new Set([first.id]), NOW);
		expect(kinds(rows)).toEqual(['1:attempt', '1:prompt', '1:text', '1:text', '2:attempt', '2:prompt', '2:text']);
		const prompts = rows.filter((row) => row.kind === 'prompt');
		expect(prompts.map((row) => row.kind === 'prompt' && [row.caption, row.text])).toEqual([
			['Task', 'You are working on task KAN-1'],
			['You requested changes', 'Greet the world']
		]);
		expect(new Set(rows.map((row) => row.key)).size).toBe(rows.length); // seq 1 of two runs: two keys
	});

	it('keeps an older attempt closed until opened; the newest is always open', () => {
		const states = new Map([[second.id, state({ prompt: 'Greet the world', entries: [text(1, 'again')] })]]);
		const rows = assemble([first, second], states, new Set(), NOW);
		expect(kinds(rows)).toEqual(['1:attempt', '2:attempt', '2:prompt', '2:text']);
		const header = rows[0];
		expect(header.kind === 'attempt' && [header.open, header.latest]).toEqual([false, false]);
		expect(attemptIndex(rows, second.id)).toBe(1);
	});

	it("shows a check's output that sent an attempt back as the message that opens the next", () => {
		const check: LogEntry = {
			key: 3,
			seq: 3,
			kind: 'check',
			command: 'make test',
			status: 'failed',
			exitCode: 1,
			output: 'FAILED',
			truncated: false,
			durationMs: 12,
			attempt: 1,
			maxAttempts: 3
		};
		const states = new Map([
			[second.id, state({ prompt: 'Greet the world', entries: [text(1, 'done'), check] })],
			[third.id, state({ prompt: 'The check `make test` failed', entries: [], ended: false })]
		]);
		const rows = assemble([first, second, third], states, new Set([second.id]), NOW);
		expect(kinds(rows)).toEqual(['1:attempt', '2:attempt', '2:prompt', '2:text', '2:check', '3:attempt', '3:prompt', '3:note']);
		const opening = rows[6];
		expect(opening.kind === 'prompt' && opening.caption).toBe("The check's output, sent back");
		const waiting = rows[7];
		expect(waiting.kind === 'note' && waiting.text).toBe('Waiting for the agent…');
	});

	it("gives a check step's runs their check rows and no message of their own", () => {
		const run = makeRun(5, 1, 'failed', { kind: 'check', attempt: 1 });
		const states = new Map([[run.id, state({ prompt: 'make test', entries: [text(1, 'x')] })]]);
		expect(kinds(assemble([run], states, new Set(), NOW))).toEqual(['1:attempt', '1:text']);
	});

	it('offers more of a long older attempt, says while it loads and when it failed', () => {
		const opened = new Set([first.id]);
		const more = assemble([first, second], new Map([[first.id, state({ entries: [text(1, 'a')], more: true })]]), opened, NOW);
		expect(kinds(more).slice(0, 3)).toEqual(['1:attempt', '1:text', '1:more']);
		const loading = assemble([first, second], new Map([[first.id, state({ entries: null, loading: true })]]), opened, NOW);
		expect(kinds(loading).slice(0, 2)).toEqual(['1:attempt', '1:note']);
		const failed = assemble([first, second], new Map([[first.id, state({ entries: [], error: 'gone' })]]), opened, NOW);
		const note = failed[1];
		expect(note.kind === 'note' && [note.text, note.error]).toEqual(['gone', true]);
	});
});

function ev(seq: number, value: string): RunEvent {
	return { seq, type: 'text', payload: { text: value }, created_at: '2026-01-01T00:00:00Z' };
}

describe('TaskConversation', () => {
	it("loads an older attempt's prompt and events only when opened, a page at a time", async () => {
		const events = Array.from({ length: 5 }, (_, i) => ev(i + 1, `line ${i + 1}`));
		const runEvents = vi.fn(
			async (_runId: number, afterSeq = 0, limit = 2): Promise<RunEventPage> => {
				const items = events.filter((e) => e.seq > afterSeq).slice(0, limit);
				return { items, next_after_seq: items.at(-1)?.seq ?? null };
			}
		);
		const getRun = vi.fn(async (runId: number) => ({ id: runId, prompt: `prompt of ${runId}` }) as Run);
		const conversation = new TaskConversation(1, { api: { getRun, runEvents }, pageSize: 2 });
		const latest = new RunLog(second.id, { schedule: (fn) => fn() });
		latest.ingest(ev(1, 'live'));
		conversation.showLatest(second.id);
		await vi.waitFor(() => expect(getRun).toHaveBeenCalledWith(second.id));

		let rows = conversation.rows([first, second], latest, NOW);
		expect(runEvents).not.toHaveBeenCalled();
		await vi.waitFor(() => {
			rows = conversation.rows([first, second], latest, NOW);
			expect(kinds(rows)).toEqual(['1:attempt', '2:attempt', '2:prompt', '2:text']);
		});

		conversation.open(first.id);
		await vi.waitFor(() => {
			rows = conversation.rows([first, second], latest, NOW);
			expect(kinds(rows).slice(0, 5)).toEqual(['1:attempt', '1:prompt', '1:text', '1:text', '1:more']);
		});
		expect(runEvents).toHaveBeenCalledTimes(1);
		await conversation.loadMore(first.id);
		await conversation.loadMore(first.id);
		flushSync();
		rows = conversation.rows([first, second], latest, NOW);
		const older = rows.filter((row) => row.run.id === first.id && row.kind === 'entry');
		expect(older.map((row) => row.kind === 'entry' && row.entry.kind === 'text' && row.entry.text)).toEqual(
			events.map((e) => e.payload.text)
		);
		expect(kinds(rows).filter((k) => k === '1:more')).toEqual([]);
		expect(runEvents.mock.calls.map((call) => call[1])).toEqual([0, 2, 4]);

		conversation.toggle(first.id);
		expect(kinds(conversation.rows([first, second], latest, NOW))).toEqual(['1:attempt', '2:attempt', '2:prompt', '2:text']);
		conversation.toggle(first.id); // opened again: nothing fetched again
		expect(runEvents).toHaveBeenCalledTimes(3);
		expect(getRun).toHaveBeenCalledTimes(2);
	});
});
