import { SvelteMap } from 'svelte/reactivity';
import { api as defaultApi, errorMessage, type Api } from '$lib/api/client';
import type { BoardEvent, TemplateCatalog, Workflow, WorkflowCreate } from '$lib/api/types';

type Deps = {
	api?: Api;
	/** Run `fn` after `ms` (tests run it at once); returns what `cancel` takes. */
	schedule?: (fn: () => void, ms: number) => unknown;
	cancel?: (handle: unknown) => void;
	/** How long a burst of events about one workflow is gathered before it is read again. */
	reloadDelayMs?: number;
};

/**
 * Workflows: the template catalog of a project (the "New from template" dialog), starting
 * one, and the workflows a view watches (the sidebar's graph), read with GET /api/workflows/{id}
 * and read again when a board event touches one of their cards (a burst of events, one read).
 * A workflow nobody watches is not kept current.
 */
export class WorkflowsState {
	/** Watched workflows, by id, as the server last said. */
	items = new SvelteMap<number, Workflow>();
	/** Why a watched workflow could not be read, by id. */
	errors = new SvelteMap<number, string>();

	catalog = $state<TemplateCatalog | null>(null);
	catalogProjectId = $state<number | null>(null);
	catalogLoading = $state(false);
	catalogError = $state<string | null>(null);

	#api: Api;
	#schedule: (fn: () => void, ms: number) => unknown;
	#cancel: (handle: unknown) => void;
	#delay: number;
	#watchers = new Map<number, number>();
	/** Task id → the watched workflow it is a card of. */
	#cards = new Map<number, number>();
	#timers = new Map<number, unknown>();
	#reads = new Map<number, number>();
	#catalogSeq = 0;

	constructor(deps: Deps = {}) {
		this.#api = deps.api ?? defaultApi;
		this.#schedule = deps.schedule ?? ((fn, ms) => setTimeout(fn, ms));
		this.#cancel = deps.cancel ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
		this.#delay = deps.reloadDelayMs ?? 150;
	}

	// ---- templates ---------------------------------------------------------------------

	/** The templates the project can start (built-in, the user's, its own) and the broken files. */
	loadCatalog = async (projectId: number): Promise<void> => {
		const seq = ++this.#catalogSeq;
		if (this.catalogProjectId !== projectId) this.catalog = null;
		this.catalogProjectId = projectId;
		this.catalogLoading = true;
		this.catalogError = null;
		try {
			const catalog = await this.#api.listWorkflowTemplates(projectId);
			if (seq === this.#catalogSeq) this.catalog = catalog;
		} catch (err) {
			if (seq === this.#catalogSeq) this.catalogError = errorMessage(err);
		} finally {
			if (seq === this.#catalogSeq) this.catalogLoading = false;
		}
	};

	/** Start a workflow. Its cards arrive through the board's events like any others. */
	start = (body: WorkflowCreate): Promise<Workflow> => this.#api.startWorkflow(body);

	// ---- watched workflows -----------------------------------------------------------------

	/** Keep a workflow current while the returned function has not been called. */
	watch = (id: number): (() => void) => {
		this.#watchers.set(id, (this.#watchers.get(id) ?? 0) + 1);
		void this.load(id);
		let watching = true;
		return () => {
			if (!watching) return;
			watching = false;
			const left = (this.#watchers.get(id) ?? 1) - 1;
			if (left > 0) {
				this.#watchers.set(id, left);
				return;
			}
			this.#watchers.delete(id);
			this.#forget(id);
		};
	};

	isWatched = (id: number): boolean => this.#watchers.has(id);

	/** Read a workflow (an older read answering late never replaces a newer one). */
	load = async (id: number): Promise<void> => {
		const seq = (this.#reads.get(id) ?? 0) + 1;
		this.#reads.set(id, seq);
		try {
			const workflow = await this.#api.getWorkflow(id);
			if (this.#reads.get(id) !== seq || !this.#watchers.has(id)) return;
			this.#remember(workflow);
			this.errors.delete(id);
		} catch (err) {
			if (this.#reads.get(id) !== seq || !this.#watchers.has(id)) return;
			this.errors.set(id, errorMessage(err));
		}
	};

	cancelWorkflow = async (id: number): Promise<Workflow> => {
		const workflow = await this.#api.cancelWorkflow(id);
		this.#reads.set(id, (this.#reads.get(id) ?? 0) + 1); // a read already on its way is older
		if (this.#watchers.has(id)) this.#remember(workflow);
		return workflow;
	};

	/** A board event: read a watched workflow again when it touches one of its cards. */
	applyEvent = (event: BoardEvent): void => {
		const id = this.#workflowOf(event);
		if (id == null || !this.#watchers.has(id)) return;
		if (this.#timers.has(id)) return;
		this.#timers.set(
			id,
			this.#schedule(() => {
				this.#timers.delete(id);
				if (this.#watchers.has(id)) void this.load(id);
			}, this.#delay)
		);
	};

	#workflowOf(event: BoardEvent): number | null {
		switch (event.type) {
			case 'task.created':
			case 'task.updated':
			case 'task.moved':
				return event.payload.workflow_id ?? this.#cards.get(event.payload.id) ?? null;
			case 'task.deleted':
				return this.#cards.get(event.payload.id) ?? null;
			case 'run.queued':
			case 'run.started':
			case 'run.updated':
			case 'run.finished':
				return this.#cards.get(event.payload.task_id) ?? null;
			default:
				return null;
		}
	}

	#remember(workflow: Workflow) {
		for (const [task, id] of this.#cards) if (id === workflow.id) this.#cards.delete(task);
		if (workflow.parent_task_id != null) this.#cards.set(workflow.parent_task_id, workflow.id);
		for (const step of workflow.steps) if (step.task_id != null) this.#cards.set(step.task_id, workflow.id);
		this.items.set(workflow.id, workflow);
	}

	#forget(id: number) {
		const timer = this.#timers.get(id);
		if (timer !== undefined) this.#cancel(timer);
		this.#timers.delete(id);
		for (const [task, workflow] of this.#cards) if (workflow === id) this.#cards.delete(task);
		this.items.delete(id);
		this.errors.delete(id);
	}
}

export const workflows = new WorkflowsState();
