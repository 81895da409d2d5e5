import type { Component } from 'svelte';
import type { Task } from '$lib/api/types';
import type { BoardState } from '$lib/state/board.svelte';
import TaskDetailsTab from './task-details-tab.svelte';
import AgentLogTab from '$lib/components/runs/agent-log-tab.svelte';
import ChangesTab from '$lib/components/runs/changes-tab.svelte';
import RunsTab from '$lib/components/runs/runs-tab.svelte';
import TaskKnowledgeTab from '$lib/components/knowledge/task-knowledge-tab.svelte';
import WorkflowTab from '$lib/components/workflows/workflow-tab.svelte';

export type TaskTabProps = { board: BoardState; task: Task };

export type TaskTab = {
	id: string;
	label: string;
	component: Component<TaskTabProps>;
	/** The tab fills the panel and scrolls by itself (the agent log's virtual list). */
	fill?: boolean;
	/** Only some tasks have the tab (default: every task). */
	when?: (task: Pick<Task, 'workflow_id' | 'workflow_step'>) => boolean;
};

/**
 * The sidebar's tabs, in order. A new tab (agent log, changes, runs…) is one more entry here:
 * a component that takes the board and the full task.
 */
export const TASK_TABS: TaskTab[] = [
	{ id: 'details', label: 'Details', component: TaskDetailsTab },
	{ id: 'workflow', label: 'Workflow', component: WorkflowTab, when: (task) => task.workflow_id != null },
	{ id: 'log', label: 'Agent Log', component: AgentLogTab, fill: true },
	{ id: 'changes', label: 'Changes', component: ChangesTab },
	{ id: 'runs', label: 'Runs', component: RunsTab },
	{ id: 'knowledge', label: 'Knowledge', component: TaskKnowledgeTab }
];

/** The tabs a task has. */
export function tabsFor(task: Pick<Task, 'workflow_id' | 'workflow_step'> | null | undefined): TaskTab[] {
	return TASK_TABS.filter((tab) => !tab.when || (task != null && tab.when(task)));
}
