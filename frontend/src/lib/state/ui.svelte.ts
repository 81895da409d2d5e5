import { Persisted } from './persisted.svelte';

export const SIDEBAR_MIN = 360;
export const SIDEBAR_MAX = 960;

export function clampSidebarWidth(width: number, viewport = Infinity): number {
	const max = Math.min(SIDEBAR_MAX, Math.max(SIDEBAR_MIN, viewport - 240));
	return Math.round(Math.max(SIDEBAR_MIN, Math.min(max, width)));
}

/** Dialogs, sidebar and other UI-only state shared between the header, board and shortcuts. */
export class UiState {
	#sidebarWidth = new Persisted<number>('kanban.sidebarWidth', 480);
	sidebarTab = $state<string>('details');
	createTaskOpen = $state(false);
	createTaskStatus = $state<import('$lib/api/types').TaskStatus>('todo');
	createProjectOpen = $state(false);
	/** The open project's settings dialog (the switcher's "Project settings", the palette's). */
	projectSettingsOpen = $state(false);
	createWorkflowOpen = $state(false);
	editTaskId = $state<number | null>(null);
	deleteTaskId = $state<number | null>(null);
	searchInput = $state<HTMLInputElement | null>(null);
	#openTask: ((id: number) => void) | null = null;
	paletteOpen = $state(false);
	shortcutsOpen = $state(false);

	get sidebarWidth(): number {
		return this.#sidebarWidth.current;
	}

	set sidebarWidth(width: number) {
		this.#sidebarWidth.current = clampSidebarWidth(width, typeof window !== 'undefined' ? window.innerWidth : Infinity);
	}

	get anyDialogOpen(): boolean {
		return (
			this.createTaskOpen ||
			this.createProjectOpen ||
			this.projectSettingsOpen ||
			this.createWorkflowOpen ||
			this.editTaskId != null ||
			this.deleteTaskId != null
		);
	}

	/** The board page says how a task is opened in the sidebar (the URL's `task`); returns the undo. */
	setTaskOpener(open: (id: number) => void): () => void {
		this.#openTask = open;
		return () => {
			if (this.#openTask === open) this.#openTask = null;
		};
	}

	/** Open a task in the sidebar (a workflow's step from its graph, a step's workflow card). */
	openTask = (id: number) => {
		this.#openTask?.(id);
	};

	openCreateTask = (status: import('$lib/api/types').TaskStatus = 'todo') => {
		this.createTaskStatus = status;
		this.createTaskOpen = true;
	};
}

export const ui = new UiState();
