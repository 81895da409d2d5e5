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
	editTaskId = $state<number | null>(null);
	deleteTaskId = $state<number | null>(null);
	searchInput = $state<HTMLInputElement | null>(null);
	paletteOpen = $state(false);
	shortcutsOpen = $state(false);

	get sidebarWidth(): number {
		return this.#sidebarWidth.current;
	}

	set sidebarWidth(width: number) {
		this.#sidebarWidth.current = clampSidebarWidth(width, typeof window !== 'undefined' ? window.innerWidth : Infinity);
	}

	get anyDialogOpen(): boolean {
		return this.createTaskOpen || this.createProjectOpen || this.editTaskId != null || this.deleteTaskId != null;
	}

	openCreateTask = (status: import('$lib/api/types').TaskStatus = 'todo') => {
		this.createTaskStatus = status;
		this.createTaskOpen = true;
	};
}

export const ui = new UiState();
