import type { RunSummary } from '$lib/api/types';
import type { LogEntry } from './run-log.svelte';

/**
 * A task's runs as one conversation: each attempt opens with a separator ("Attempt 2 ·
 * requested changes · 14:02") and what the agent was told (the task for the first, the
 * reviewer's feedback or the check's output for the next), then the attempt's own rows.
 * Pure functions: the state that loads prompts and events lives in conversation.svelte.ts.
 */

export type RunReason = RunSummary['reason'];

/** What the separator says about why an attempt ran. */
const REASON_TEXT: Record<RunReason, string> = {
	start: 'started',
	changes_requested: 'requested changes',
	check_failed: 'check failed',
	sent_back: 'sent back from review'
};

/** Who speaks in an attempt's opening message. */
const PROMPT_CAPTION: Record<RunReason, string> = {
	start: 'Task',
	changes_requested: 'You requested changes',
	check_failed: "The check's output, sent back",
	sent_back: 'Sent back from review'
};

export function reasonText(run: Pick<RunSummary, 'reason' | 'attempt' | 'kind'>): string {
	if (run.kind === 'check') return 'check';
	if (run.reason === 'start' && run.attempt > 1) return 'run again';
	return REASON_TEXT[run.reason] ?? run.reason;
}

export function promptCaption(run: Pick<RunSummary, 'reason' | 'attempt'>): string {
	if (run.reason === 'start' && run.attempt > 1) return 'Task, run again';
	return PROMPT_CAPTION[run.reason] ?? 'Prompt';
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayAndClock = new Intl.DateTimeFormat(undefined, {
	month: 'short',
	day: 'numeric',
	hour: '2-digit',
	minute: '2-digit'
});

/** "14:02" today, "Dec 1, 14:02" another day. */
export function formatClock(iso: string, now = new Date()): string {
	const at = new Date(iso);
	if (!Number.isFinite(at.getTime())) return '';
	const sameDay =
		at.getFullYear() === now.getFullYear() && at.getMonth() === now.getMonth() && at.getDate() === now.getDate();
	return (sameDay ? clock : dayAndClock).format(at);
}

/** "Attempt 2 · requested changes · 14:02": the one name the board gives a run. */
export function attemptLabel(run: Pick<RunSummary, 'attempt' | 'reason' | 'kind' | 'created_at'>, now = new Date()): string {
	const at = formatClock(run.created_at, now);
	return [`Attempt ${run.attempt}`, reasonText(run), at].filter(Boolean).join(' · ');
}

/** What is known of one attempt: its prompt and rows once loaded (null: not yet). */
export type AttemptState = {
	prompt: string | null;
	entries: LogEntry[] | null;
	/** Older events of it exist beyond those loaded. */
	more: boolean;
	loading: boolean;
	error: string | null;
	/** Its log is complete (the run is over and every event arrived). */
	ended: boolean;
};

type RowBase = { key: string; run: RunSummary };
export type ConversationRow = RowBase &
	(
		| { kind: 'attempt'; label: string; open: boolean; latest: boolean }
		| { kind: 'prompt'; caption: string; text: string }
		| { kind: 'entry'; entry: LogEntry; latest: boolean }
		| { kind: 'more'; loading: boolean }
		| { kind: 'note'; text: string; error: boolean }
	);

/** The runs oldest first (the API and the history list them newest first). */
export function inOrder(runs: readonly RunSummary[]): RunSummary[] {
	return [...runs].sort((a, b) => a.attempt - b.attempt || a.id - b.id);
}

/**
 * The rows of the conversation. The newest attempt is always open; an older one shows its
 * rows when `opened` has it. A check run (a workflow's check step) has no message of its own:
 * its command is in its check row.
 */
export function assemble(
	runs: readonly RunSummary[],
	states: ReadonlyMap<number, AttemptState>,
	opened: ReadonlySet<number>,
	now = new Date()
): ConversationRow[] {
	const ordered = inOrder(runs);
	const newest = ordered.at(-1)?.id;
	const rows: ConversationRow[] = [];
	for (const run of ordered) {
		const latest = run.id === newest;
		const open = latest || opened.has(run.id);
		rows.push({ key: `${run.id}:attempt`, run, kind: 'attempt', label: attemptLabel(run, now), open, latest });
		if (!open) continue;
		const state = states.get(run.id);
		if (run.kind !== 'check' && state?.prompt) {
			rows.push({ key: `${run.id}:prompt`, run, kind: 'prompt', caption: promptCaption(run), text: state.prompt });
		}
		for (const entry of state?.entries ?? []) {
			rows.push({ key: `${run.id}:${entry.key}`, run, kind: 'entry', entry, latest });
		}
		if (state?.error) {
			rows.push({ key: `${run.id}:note`, run, kind: 'note', text: state.error, error: true });
		} else if (state?.more) {
			rows.push({ key: `${run.id}:more`, run, kind: 'more', loading: state.loading });
		} else if (!state?.entries || state.loading) {
			rows.push({ key: `${run.id}:note`, run, kind: 'note', text: 'Loading…', error: false });
		} else if (state.entries.length === 0) {
			const text = !state.ended ? 'Waiting for the agent…' : 'This run recorded no events.';
			rows.push({ key: `${run.id}:note`, run, kind: 'note', text, error: false });
		}
	}
	return rows;
}

/** The row index of an attempt's separator, to scroll to it. */
export function attemptIndex(rows: readonly ConversationRow[], runId: number): number {
	return rows.findIndex((row) => row.kind === 'attempt' && row.run.id === runId);
}
