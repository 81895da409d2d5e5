/**
 * The agent actions the open task's panel offers right now (Run, Approve, Request changes, …),
 * so the command palette can list them and run exactly what the panel's buttons run: the run bar
 * offers its actions while it is shown, with the same conditions as its buttons.
 */
export type TaskAction = {
	id: 'run' | 'resume' | 'cancel' | 'approve' | 'request-changes';
	label: string;
	run: () => unknown;
};

export class TaskActions {
	taskId = $state<number | null>(null);
	actions = $state.raw<TaskAction[]>([]);
	#owner: object | null = null;

	/** Offer `actions` for a task; the returned function withdraws them (when still the offer). */
	offer(taskId: number, actions: TaskAction[]): () => void {
		const owner = {};
		this.#owner = owner;
		this.taskId = taskId;
		this.actions = actions;
		return () => {
			if (this.#owner !== owner) return;
			this.#owner = null;
			this.taskId = null;
			this.actions = [];
		};
	}

	/** The actions offered for this task (none when another one, or nothing, is open). */
	for(taskId: number | null): TaskAction[] {
		return taskId != null && taskId === this.taskId ? this.actions : [];
	}
}

export const taskActions = new TaskActions();
