/**
 * How many of a project's tasks wait for the user (an approval to answer, or work in Review):
 * the tab title's count and the "Needs me" filter's. It covers the whole project, whatever the
 * search shows: it is seeded from an unfiltered board snapshot and kept by the live events.
 */
import { SvelteMap } from 'svelte/reactivity';
import type { Api } from '$lib/api/client';
import { api as defaultApi } from '$lib/api/client';
import type { BoardEvent, BoardTask, RunStatus, TaskStatus } from '$lib/api/types';
import { STATUSES } from '$lib/api/types';
import { needsMe } from '$lib/filters';

type Held = { version: number; status: TaskStatus; runId: number; runStatus: RunStatus | null };

export class NeedsMeState {
	projectId = $state<number | null>(null);
	#tasks = new SvelteMap<number, Held>();
	#api: Api;
	#seedSeq = 0;

	constructor(api: Api = defaultApi) {
		this.#api = api;
	}

	count = $derived.by(() => {
		let n = 0;
		for (const held of this.#tasks.values()) if (needsMe({ status: held.status, run: held.runStatus ? { status: held.runStatus } : null })) n++;
		return n;
	});

	/** Seed from a snapshot of every card of the project (newer news already held wins). */
	seed = (projectId: number, cards: Iterable<BoardTask>) => {
		if (projectId !== this.projectId) this.reset(projectId);
		this.#seedSeq++;
		for (const card of cards) {
			this.#task(card.id, card.version, card.status);
			if (card.run) this.#run(card.id, card.run.id, card.run.status);
		}
	};

	/** Seed from the server's unfiltered board (when the board on screen is a search's). */
	load = async (projectId: number) => {
		if (projectId !== this.projectId) this.reset(projectId);
		const seq = ++this.#seedSeq;
		try {
			const board = await this.#api.getBoard(projectId);
			if (seq !== this.#seedSeq || projectId !== this.projectId) return;
			this.seed(projectId, board.columns.flatMap((c) => c.tasks));
		} catch {
			// the count stays what the events made it; the next board load seeds it again
		}
	};

	reset = (projectId: number | null = null) => {
		this.projectId = projectId;
		this.#tasks.clear();
	};

	applyEvent = (event: BoardEvent) => {
		switch (event.type) {
			case 'task.created':
			case 'task.updated':
			case 'task.moved':
				if (event.payload.project_id === this.projectId)
					this.#task(event.payload.id, event.payload.version, event.payload.status);
				return;
			case 'task.deleted':
				this.#tasks.delete(event.payload.id);
				return;
			case 'run.queued':
			case 'run.started':
			case 'run.updated':
			case 'run.finished':
				if (event.payload.project_id === this.projectId)
					this.#run(event.payload.task_id, event.payload.id, event.payload.status);
				return;
			default:
				return;
		}
	};

	#task(id: number, version: number, status: TaskStatus) {
		if (!(STATUSES as readonly string[]).includes(status)) return;
		const held = this.#tasks.get(id);
		if (held && held.version > version) return;
		if (held && held.version === version && held.status === status) return;
		this.#tasks.set(id, { runId: 0, runStatus: null, ...held, version, status });
	}

	#run(taskId: number, runId: number, status: RunStatus) {
		const held = this.#tasks.get(taskId);
		if (!held || held.runId > runId || (held.runId === runId && held.runStatus === status)) return;
		this.#tasks.set(taskId, { ...held, runId, runStatus: status });
	}
}

export const needsMeCount = new NeedsMeState();
