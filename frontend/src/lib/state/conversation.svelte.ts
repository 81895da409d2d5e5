import { SvelteMap, SvelteSet } from 'svelte/reactivity';
import { api as defaultApi, errorMessage, type Api } from '$lib/api/client';
import type { RunSummary } from '$lib/api/types';
import { assemble, type AttemptState, type ConversationRow } from './conversation';
import { RunLog } from './run-log.svelte';

/** Events of an older attempt fetched per page (the newest attempt streams instead). */
export const OLDER_PAGE_SIZE = 500;

type Loaded = { prompt: string | null; log: RunLog | null; more: boolean; loading: boolean; error: string | null };

type Deps = {
	api?: Pick<Api, 'getRun' | 'runEvents'>;
	pageSize?: number;
};

/**
 * One task's conversation across its runs. The newest attempt's rows come from its live log
 * (passed in, streaming as before); an older attempt's prompt and events are fetched only when
 * it is opened, a page at a time, so a task with many long runs costs nothing up front.
 */
export class TaskConversation {
	readonly taskId: number;
	/** Older attempts the user opened, by run id. */
	opened = new SvelteSet<number>();

	#loaded = new SvelteMap<number, Loaded>();
	#api: Pick<Api, 'getRun' | 'runEvents'>;
	#pageSize: number;

	constructor(taskId: number, deps: Deps = {}) {
		this.taskId = taskId;
		this.#api = deps.api ?? defaultApi;
		this.#pageSize = deps.pageSize ?? OLDER_PAGE_SIZE;
	}

	/** The rows to show, given the task's runs and the newest run's live log. */
	rows = (runs: readonly RunSummary[], latest: RunLog | null, now = new Date()): ConversationRow[] => {
		const states = new Map<number, AttemptState>();
		for (const [runId, loaded] of this.#loaded) {
			const live = latest?.runId === runId ? latest : null;
			const log = live ?? loaded.log;
			states.set(runId, {
				prompt: loaded.prompt,
				entries: log ? log.entries : null,
				more: live ? false : loaded.more,
				loading: live ? false : loaded.loading,
				error: loaded.error,
				ended: live ? live.ended : true
			});
		}
		if (latest && !states.has(latest.runId)) {
			states.set(latest.runId, {
				prompt: null,
				entries: latest.entries,
				more: false,
				loading: false,
				error: null,
				ended: latest.ended
			});
		}
		return assemble(runs, states, this.opened, now);
	};

	/** Fetch what the newest attempt was told (its rows stream through its live log). */
	showLatest = (runId: number) => {
		if (this.#loaded.has(runId)) return;
		this.#loaded.set(runId, { prompt: null, log: null, more: false, loading: false, error: null });
		void this.#fetchPrompt(runId);
	};

	isOpen = (runId: number) => this.opened.has(runId);

	toggle = (runId: number) => {
		if (this.opened.has(runId)) this.opened.delete(runId);
		else this.open(runId);
	};

	/** Show an older attempt: its prompt and first page of events load on the first opening. */
	open = (runId: number) => {
		this.opened.add(runId);
		const loaded = this.#loaded.get(runId);
		if (loaded?.log) return;
		this.#loaded.set(runId, {
			prompt: loaded?.prompt ?? null,
			// Pages are published by loadMore's own commit, once each, not per event.
			log: new RunLog(runId, { schedule: () => {} }),
			more: false,
			loading: false,
			error: null
		});
		if (loaded?.prompt == null) void this.#fetchPrompt(runId);
		void this.loadMore(runId);
	};

	/** The next page of an opened older attempt's events. */
	loadMore = async (runId: number): Promise<void> => {
		const loaded = this.#loaded.get(runId);
		if (!loaded?.log || loaded.loading) return;
		const log = loaded.log;
		this.#update(runId, { loading: true, error: null });
		try {
			const page = await this.#api.runEvents(runId, log.lastSeq, this.#pageSize);
			for (const event of page.items) log.ingest(event);
			log.commit();
			this.#update(runId, { loading: false, more: page.items.length === this.#pageSize });
		} catch (err) {
			this.#update(runId, { loading: false, error: `Couldn't load this attempt's log: ${errorMessage(err)}` });
		}
	};

	async #fetchPrompt(runId: number) {
		try {
			const run = await this.#api.getRun(runId);
			this.#update(runId, { prompt: run.prompt });
		} catch {
			// The attempt's rows still show; only its opening message is missing.
		}
	}

	#update(runId: number, change: Partial<Loaded>) {
		const loaded = this.#loaded.get(runId);
		if (loaded) this.#loaded.set(runId, { ...loaded, ...change });
	}
}
