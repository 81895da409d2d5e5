import { isNewer } from '$lib/dependencies';
import { errorMessage, type Api } from '$lib/api/client';
import type { BoardTask, Task } from '$lib/api/types';

/** The task open in the sidebar: the full task (with description and result), kept at its newest version. */
export class TaskDetail {
	task = $state<Task | null>(null);
	id = $state<number | null>(null);
	error = $state<string | null>(null);

	#api: Api;
	#loaded: (task: Task) => void;

	/** `loaded` is told about the task each time it is fetched (the board may hold an older version). */
	constructor(api: Api, loaded: (task: Task) => void) {
		this.#api = api;
		this.#loaded = loaded;
	}

	open = async (id: number): Promise<void> => {
		if (this.id === id && this.task) return;
		this.id = id;
		this.error = null;
		if (this.task?.id !== id) this.task = null;
		try {
			const task = await this.#api.getTask(id);
			if (this.id !== id) return;
			this.task = task;
			this.#loaded(task);
		} catch (err) {
			if (this.id !== id) return;
			this.error = errorMessage(err);
		}
	};

	close = () => {
		this.id = null;
		this.task = null;
		this.error = null;
	};

	/** A newer version of a task arrived: show it if it is the open one. */
	offer(task: Task) {
		if (this.id === task.id && (!this.task || isNewer(this.task, task))) this.task = task;
	}

	/** A newer card (no description or result) arrived: update what it carries. */
	offerCard(card: BoardTask) {
		if (this.task?.id === card.id && isNewer(this.task, card)) this.task = { ...this.task, ...card };
	}
}
