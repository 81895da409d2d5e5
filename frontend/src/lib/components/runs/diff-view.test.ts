import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, fireEvent, render, screen, within } from '@testing-library/svelte';
import type { Diff, DiffFile, DiffLine } from '$lib/api/types';
import { initiallyExpanded } from '$lib/diff';
import DiffView from './diff-view.svelte';

afterEach(() => cleanup());

function file(path: string, status: DiffFile['status'], lines: DiffLine[], extra: Partial<DiffFile> = {}): DiffFile {
	return {
		path,
		old_path: null,
		status,
		additions: lines.filter((l) => l.type === 'add').length,
		deletions: lines.filter((l) => l.type === 'del').length,
		binary: false,
		truncated: false,
		hunks: lines.length ? [{ header: '@@ -1,3 +1,3 @@', lines }] : [],
		...extra
	};
}

function diffOf(files: DiffFile[]): Diff {
	return {
		base: 'aaa',
		head: 'bbb',
		branch: 'kanban/kan-1-greeting',
		files,
		stats: {
			files: files.length,
			additions: files.reduce((n, f) => n + f.additions, 0),
			deletions: files.reduce((n, f) => n + f.deletions, 0)
		}
	};
}

const modified: DiffLine[] = [
	{ type: 'context', old: 1, new: 1, text: 'one' },
	{ type: 'del', old: 2, new: null, text: 'two' },
	{ type: 'add', old: null, new: 2, text: 'TWO' },
	{ type: 'add', old: null, new: 3, text: 'three', no_newline: true }
];

describe('DiffView', () => {
	it('lists the files with status and +/− counts, and shows hunks with line numbers and colours', () => {
		render(DiffView, {
			diff: diffOf([
				file('src/app.ts', 'modified', modified),
				file('hello.txt', 'added', [{ type: 'add', old: null, new: 1, text: 'hello' }]),
				file('logo.png', 'added', [], { binary: true, additions: 0 }),
				file('new/name.ts', 'renamed', [], { old_path: 'old/name.ts' })
			])
		});
		expect(screen.getByTestId('diff-summary').textContent).toMatch(/4 files changed\s*\+3\s*−1/);

		const links = screen.getAllByTestId('diff-file-link');
		expect(links.map((l) => l.textContent?.replace(/\s+/g, ' ').trim())).toEqual([
			'M src/app.ts +2 −1',
			'A hello.txt +1 −0',
			'A logo.png +0 −0',
			'R old/name.ts → new/name.ts +0 −0'
		]);

		const app = screen.getAllByTestId('diff-file')[0];
		expect(app.dataset.path).toBe('src/app.ts');
		expect(within(app).getByTestId('diff-hunk-header').textContent?.trim()).toBe('@@ -1,3 +1,3 @@');
		const rows = within(app).getAllByTestId('diff-line');
		expect(rows.map((r) => r.dataset.type)).toEqual(['context', 'del', 'add', 'add']);
		expect(rows.map((r) => r.classList.contains(r.dataset.type!))).toEqual([true, true, true, true]);
		expect(rows.map((r) => within(r).getByTestId('diff-old-line').textContent)).toEqual(['1', '2', '', '']);
		expect(rows.map((r) => within(r).getByTestId('diff-new-line').textContent)).toEqual(['1', '', '2', '3']);
		expect(rows[1].textContent).toContain('-two');
		expect(rows[2].textContent).toContain('+TWO');
		expect(within(rows[3]).getByTitle('No newline at end of file')).toBeInTheDocument();

		expect(screen.getByText('Binary file; not shown.')).toBeInTheDocument();
		expect(screen.getByText('Renamed without changes.')).toBeInTheDocument();
	});

	it('opens a large diff with later files collapsed, and expands one on demand', async () => {
		const big = (n: number): DiffLine[] =>
			Array.from({ length: n }, (_, i) => ({ type: 'add' as const, old: null, new: i + 1, text: `line ${i + 1}` }));
		const files = [file('a.txt', 'added', big(800)), file('b.txt', 'added', big(800)), file('c.txt', 'added', big(10))];
		expect([...initiallyExpanded(files)]).toEqual(['a.txt']);
		const { container } = render(DiffView, { diff: diffOf(files) });
		const lines = (root: Element) => root.querySelectorAll('[data-testid="diff-line"]').length;

		const sections = screen.getAllByTestId('diff-file');
		expect(sections.map(lines)).toEqual([800, 0, 0]);
		expect(lines(container)).toBe(800); // only what is shown is in the DOM

		await fireEvent.click(within(sections[2]).getByTestId('diff-show-file'));
		expect(lines(sections[2])).toBe(10);
		// The file list opens a collapsed file too.
		await fireEvent.click(screen.getAllByTestId('diff-file-link')[1]);
		expect(lines(sections[1])).toBe(800);
		// And a file's header folds it again.
		await fireEvent.click(sections[0].querySelector('button[aria-expanded="true"]')!);
		expect(lines(sections[0])).toBe(0);
	}, 20_000);

	it('expands at least the first file, however big', () => {
		const huge = file('huge.txt', 'added', Array.from({ length: 5000 }, (_, i) => ({ type: 'add' as const, old: null, new: i + 1, text: '' })));
		expect([...initiallyExpanded([huge, file('small.txt', 'added', modified)])]).toEqual(['huge.txt']);
	});
});
