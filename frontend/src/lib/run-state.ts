/**
 * How a card's column and its newest run's state read together. A run's outcome moves its card
 * (done → Review, failed or cancelled → To Do, interrupted stays in Running); a card moved by
 * hand afterwards no longer shows that outcome as its state, so a card in Running never reads
 * "Run failed". The run itself is unchanged: the task's panel still lists it.
 */
import { isActiveRun, type RunSummary, type TaskStatus } from '$lib/api/types';

const OUTCOME_COLUMNS: Record<string, readonly TaskStatus[]> = {
	succeeded: ['needs_review', 'done'],
	failed: ['todo'],
	cancelled: ['todo'],
	interrupted: ['in_progress']
};

/** Does the run's state describe the card where it is now? */
export function runFitsColumn(status: TaskStatus | string, run: Pick<RunSummary, 'status'> | null | undefined): boolean {
	if (!run) return false;
	if (isActiveRun(run)) return true;
	const columns = OUTCOME_COLUMNS[run.status];
	return columns == null || columns.includes(status as TaskStatus);
}

/** A run that changed nothing: approving it merges nothing, it only marks the task done. */
export function nothingToMerge(run: Pick<RunSummary, 'status' | 'has_changes'> | null | undefined): boolean {
	return run != null && !isActiveRun(run) && run.has_changes === false;
}
