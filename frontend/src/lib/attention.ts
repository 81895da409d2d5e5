/**
 * What a live board event means to the person at the board: an agent waits for an approval, a
 * run finished (its work waits in Review, or a workflow took it on), a run failed (and why).
 * The toast and the browser notification both say this; every other event says nothing.
 */
import type { BoardEvent, BoardTask } from '$lib/api/types';

export type NoticeKind = 'approval' | 'finished' | 'failed';

export type Notice = {
	kind: NoticeKind;
	/** The board event it comes from (a notice is shown once per event). */
	eventId: number;
	taskId: number | null;
	/** The run it is about (an approval's task may not be on the board: a search hides it). */
	runId: number;
	title: string;
	body: string;
};

/** The task an event is about, as the board holds it (null when it is not loaded, e.g. hidden by a search). */
export type TaskLookup = {
	byId: (taskId: number) => Pick<BoardTask, 'id' | 'short_id' | 'title' | 'workflow_step'> | null;
	byRun: (runId: number) => Pick<BoardTask, 'id' | 'short_id' | 'title' | 'workflow_step'> | null;
};

const SUBJECT_KEYS = ['command', 'file_path', 'path', 'url', 'pattern', 'query', 'notebook_path', 'description'];
const SUBJECT_CHARS = 80;
const REASON_CHARS = 300;

export function clip(text: string, limit: number): string {
	const t = text.trim();
	return t.length <= limit ? t : t.slice(0, limit - 1).trimEnd() + '…';
}

export function firstLine(text: string | null | undefined): string {
	return (text ?? '').split('\n').find((line) => line.trim())?.trim() ?? '';
}

/** `Bash: rm -rf build`: the tool and the input that says what it is about to do. */
export function toolSummary(tool: string, input: Record<string, unknown>): string {
	const key = SUBJECT_KEYS.find((k) => typeof input[k] === 'string');
	const subject = key ? String(input[key]) : Object.keys(input).length ? JSON.stringify(input) : '';
	const oneLine = subject.split(/\s+/).join(' ');
	return oneLine ? `${tool}: ${clip(oneLine, SUBJECT_CHARS)}` : tool;
}

/** The notice a board event makes, or null (cancelled and interrupted runs, check steps' commands, other events). */
export function noticeFor(event: BoardEvent, tasks: TaskLookup): Notice | null {
	if (event.type === 'approval.requested') {
		const approval = event.payload;
		const task = tasks.byRun(approval.run_id);
		const who = task ? task.short_id : 'An agent';
		return {
			kind: 'approval',
			eventId: event.id,
			taskId: task?.id ?? null,
			runId: approval.run_id,
			title: `${who} needs approval`,
			body: [toolSummary(approval.tool_name, approval.input ?? {}), task?.title].filter(Boolean).join(' · ')
		};
	}
	if (event.type !== 'run.finished') return null;
	const run = event.payload;
	const task = tasks.byId(run.task_id);
	const who = task?.short_id ?? 'A task';
	if (run.status === 'succeeded') {
		if (run.kind === 'check') return null; // a check step's command: its workflow goes on by itself
		const step = task?.workflow_step;
		return {
			kind: 'finished',
			eventId: event.id,
			taskId: run.task_id,
			runId: run.id,
			title: step ? `${who} finished workflow step ${step}` : `${who} is ready for review`,
			body: task?.title ?? ''
		};
	}
	if (run.status === 'failed') {
		const reason = firstLine(run.error) || 'No reason given.';
		return {
			kind: 'failed',
			eventId: event.id,
			taskId: run.task_id,
			runId: run.id,
			title: `${who}'s run failed`,
			body: clip(reason, REASON_CHARS)
		};
	}
	return null;
}

/** The tab's title: "(N) Kanban Orchestrator — PROJECT", N the tasks that need the user (left out at 0). */
export function tabTitle(project: string | null, needingMe: number): string {
	const base = project ? `Kanban Orchestrator — ${project}` : 'Kanban Orchestrator';
	return needingMe > 0 ? `(${needingMe}) ${base}` : base;
}
