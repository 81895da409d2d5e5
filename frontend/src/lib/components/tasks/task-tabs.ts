import type { Component } from 'svelte';
import type { Task } from '$lib/api/types';
import type { BoardState } from '$lib/state/board.svelte';
import TaskDetailsTab from './task-details-tab.svelte';

export type TaskTabProps = { board: BoardState; task: Task };

export type TaskTab = {
	id: string;
	label: string;
	component: Component<TaskTabProps>;
};

/**
 * The sidebar's tabs, in order. A new tab (agent log, changes, runs…) is one more entry here:
 * a component that takes the board and the full task.
 */
export const TASK_TABS: TaskTab[] = [{ id: 'details', label: 'Details', component: TaskDetailsTab }];
