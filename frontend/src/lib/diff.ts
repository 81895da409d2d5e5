import type { DiffFile } from '$lib/api/types';

/** Lines shown at once before further files start collapsed: big diffs stay quick to open. */
export const EXPANDED_LINE_BUDGET = 1500;

export function diffLineCount(file: DiffFile): number {
	let n = 0;
	for (const hunk of file.hunks) n += hunk.lines.length + 1;
	return n;
}

/** The files shown expanded at first: in order, while the running line count stays within budget (the first always). */
export function initiallyExpanded(files: DiffFile[], budget = EXPANDED_LINE_BUDGET): Set<string> {
	const open = new Set<string>();
	let used = 0;
	for (const file of files) {
		const lines = diffLineCount(file);
		if (open.size > 0 && used + lines > budget) break;
		open.add(file.path);
		used += lines;
	}
	return open;
}

export const FILE_STATUS: Record<DiffFile['status'], { letter: string; label: string; class: string }> = {
	added: { letter: 'A', label: 'Added', class: 'text-success' },
	modified: { letter: 'M', label: 'Modified', class: 'text-warning' },
	deleted: { letter: 'D', label: 'Deleted', class: 'text-destructive' },
	renamed: { letter: 'R', label: 'Renamed', class: 'text-primary' }
};

export function fileStatus(status: string) {
	return FILE_STATUS[status as DiffFile['status']] ?? { letter: '?', label: status, class: 'text-muted-foreground' };
}

/** The marker a diff line starts with. */
export function linePrefix(type: string): string {
	return type === 'add' ? '+' : type === 'del' ? '-' : ' ';
}
