import { SvelteMap, SvelteSet } from 'svelte/reactivity';
import { toast } from 'svelte-sonner';
import { api as defaultApi, ApiError, errorMessage, type Api } from '$lib/api/client';
import { isActiveRun, type Approval, type ApprovalChoice, type BoardEvent, type Run, type RunSummary, type Task } from '$lib/api/types';
import { RunLog, type RunLogOptions } from './run-log.svelte';

type Notify = (message: string, description?: string) => void;

type Deps = {
	api?: Api;
	notify?: Notify;
	/** Options for the logs this state opens (tests pass a fake EventSource). */
	log?: Omit<RunLogOptions, 'onApproval'>;
	/** How many run logs stay open (the rest are closed, oldest first). */
	keepLogs?: number;
};

export type ApproveOutcome = { ok: true; task: Task } | { ok: false; files: string[]; detail: string };

function summaryOf(run: Run | RunSummary): RunSummary {
	const { prompt: _p, result: _r, pending_approvals: _a, ...summary } = run as Run;
	return summary;
}

/** The files a 409 from approve names (a merge conflict), if any. */
export function conflictFiles(err: unknown): string[] {
	if (!(err instanceof ApiError) || err.status !== 409) return [];
	const body = err.body as { files?: unknown } | null;
	return Array.isArray(body?.files) ? body.files.map(String) : [];
}

/**
 * Agent runs: the actions (run, cancel, resume, approve, request changes, answer an approval),
 * each task's run history, the approvals that wait for an answer, and the open run logs. Kept
 * current from board events (run.*, approval.*) without refetching.
 */
export class RunsState {
	/** Approvals waiting for an answer, by approval id. */
	approvals = new SvelteMap<number, Approval>();
	/** Each task's runs, newest first (loaded on demand, then kept current from events). */
	history = new SvelteMap<number, RunSummary[]>();
	/** The run whose log a task's sidebar shows, when the user picked an older one. */
	selected = new SvelteMap<number, number>();
	/** Actions in flight, as `action:id`, so buttons can show it and not fire twice. */
	busy = new SvelteSet<string>();

	#api: Api;
	#notify: Notify;
	#logOptions: Omit<RunLogOptions, 'onApproval'>;
	#keepLogs: number;
	#logs = new Map<number, RunLog>();

	constructor(deps: Deps = {}) {
		this.#api = deps.api ?? defaultApi;
		this.#notify = deps.notify ?? ((message, description) => toast.error(message, { description }));
		this.#logOptions = deps.log ?? {};
		this.#keepLogs = deps.keepLogs ?? 4;
	}

	// ---- events -------------------------------------------------------------------------

	applyEvent = (event: BoardEvent): void => {
		switch (event.type) {
			case 'run.queued':
			case 'run.started':
			case 'run.updated':
			case 'run.finished':
				this.#applyRun(event.payload);
				return;
			case 'approval.requested':
			case 'approval.resolved':
				this.noteApproval(event.payload);
				return;
			default:
				return;
		}
	};

	/** Remember an approval while it waits; forget it once answered (or expired). */
	noteApproval = (approval: Approval) => {
		if (approval.status === 'pending') {
			if (!this.approvals.has(approval.id)) this.approvals.set(approval.id, approval);
		} else {
			this.approvals.delete(approval.id);
		}
	};

	#applyRun(run: RunSummary) {
		if (isActiveRun(run)) this.#logs.get(run.id)?.reopen();
		const list = this.history.get(run.task_id);
		if (list) {
			const index = list.findIndex((r) => r.id === run.id);
			if (index === -1) this.history.set(run.task_id, [run, ...list].sort((a, b) => b.id - a.id));
			else this.history.set(run.task_id, list.map((r, i) => (i === index ? run : r)));
		}
		if (run.status !== 'waiting_approval') {
			// Nothing of this run waits any more: answered, or the run ended and they expired.
			for (const approval of this.approvals.values()) {
				if (approval.run_id === run.id) this.approvals.delete(approval.id);
			}
		}
	}

	/** What a run waits for. Only a run that waits has any (an old log may name expired ones). */
	pendingFor = (run: Pick<RunSummary, 'id' | 'status'> | null | undefined): Approval[] => {
		if (!run || run.status !== 'waiting_approval') return [];
		const list: Approval[] = [];
		for (const approval of this.approvals.values()) if (approval.run_id === run.id) list.push(approval);
		return list.sort((a, b) => a.id - b.id);
	};

	/** The newest run we know of for a task: the card's, or the history's if that is newer. */
	latest = (taskId: number, fromCard?: RunSummary | null): RunSummary | null => {
		const first = this.history.get(taskId)?.[0] ?? null;
		if (!fromCard) return first;
		if (!first) return fromCard;
		return first.id > fromCard.id ? first : fromCard;
	};

	loadHistory = async (taskId: number): Promise<RunSummary[]> => {
		const runs = await this.#api.listRuns(taskId);
		const sorted = [...runs].sort((a, b) => b.id - a.id);
		this.history.set(taskId, sorted);
		return sorted;
	};

	/** Fetch a run's pending approvals (they may predate this page). */
	refreshApprovals = async (runId: number): Promise<void> => {
		try {
			const run = await this.#api.getRun(runId);
			for (const approval of this.approvals.values()) {
				if (approval.run_id === runId) this.approvals.delete(approval.id);
			}
			for (const approval of run.pending_approvals ?? []) this.noteApproval(approval);
		} catch {
			// the banner simply stays as the events left it
		}
	};

	// ---- logs ---------------------------------------------------------------------------

	/** The log of a run, streaming (opened on first use; the least recently used are closed). */
	log = (runId: number): RunLog => {
		let log = this.#logs.get(runId);
		if (log) {
			this.#logs.delete(runId);
			this.#logs.set(runId, log);
		} else {
			log = new RunLog(runId, { ...this.#logOptions, onApproval: this.noteApproval });
			this.#logs.set(runId, log);
			while (this.#logs.size > this.#keepLogs) {
				const [oldest, evicted] = this.#logs.entries().next().value as [number, RunLog];
				evicted.close();
				this.#logs.delete(oldest);
			}
		}
		log.connect();
		return log;
	};

	select = (taskId: number, runId: number | null) => {
		if (runId == null) this.selected.delete(taskId);
		else this.selected.set(taskId, runId);
	};

	// ---- actions ------------------------------------------------------------------------

	async #act<T>(key: string, what: string, fn: () => Promise<T>): Promise<T | null> {
		if (this.busy.has(key)) return null;
		this.busy.add(key);
		try {
			return await fn();
		} catch (err) {
			this.#notify(`${what}: ${errorMessage(err)}`);
			return null;
		} finally {
			this.busy.delete(key);
		}
	}

	isBusy = (action: string, id: number): boolean => this.busy.has(`${action}:${id}`);

	#remember(run: Run | null) {
		if (!run) return;
		this.selected.delete(run.task_id);
		this.#applyRun(summaryOf(run));
	}

	start = async (taskId: number, instructions?: string): Promise<Run | null> => {
		const run = await this.#act(`start:${taskId}`, "Couldn't start the agent", () =>
			this.#api.startRun(taskId, instructions)
		);
		this.#remember(run);
		return run;
	};

	cancel = (runId: number): Promise<Run | null> =>
		this.#act(`cancel:${runId}`, "Couldn't cancel the run", () => this.#api.cancelRun(runId));

	resume = async (runId: number): Promise<Run | null> => {
		const run = await this.#act(`resume:${runId}`, "Couldn't resume the run", () => this.#api.resumeRun(runId));
		this.#remember(run);
		return run;
	};

	requestChanges = async (taskId: number, feedback: string): Promise<Run | null> => {
		const run = await this.#act(`changes:${taskId}`, "Couldn't request changes", () =>
			this.#api.requestChanges(taskId, feedback)
		);
		this.#remember(run);
		return run;
	};

	/** Merge the task's work. A merge conflict comes back with the files (and nothing changed). */
	approve = async (taskId: number): Promise<ApproveOutcome | null> => {
		const key = `approve:${taskId}`;
		if (this.busy.has(key)) return null;
		this.busy.add(key);
		try {
			return { ok: true, task: await this.#api.approveTask(taskId) };
		} catch (err) {
			const detail = errorMessage(err);
			const files = conflictFiles(err);
			if (!files.length) this.#notify(`Couldn't approve: ${detail}`);
			return { ok: false, files, detail };
		} finally {
			this.busy.delete(key);
		}
	};

	decide = async (approval: Approval, decision: ApprovalChoice, message?: string): Promise<boolean> => {
		const answered = await this.#act(`approval:${approval.id}`, "Couldn't answer the agent", () =>
			this.#api.decideApproval(approval.id, decision, message)
		);
		if (answered) this.noteApproval(answered);
		else void this.refreshApprovals(approval.run_id); // answered elsewhere meanwhile?
		return answered != null;
	};
}

export const runs = new RunsState();
