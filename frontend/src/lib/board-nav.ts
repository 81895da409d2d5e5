/**
 * Moving the keyboard focus between the board's cards: j/k and ↑/↓ within a column, h/l and
 * ←/→ between columns (empty columns are skipped). The board is given as each column's card
 * ids in display order.
 */

export type Direction = 'up' | 'down' | 'left' | 'right';

const KEYS: Record<string, Direction> = {
	j: 'down',
	ArrowDown: 'down',
	k: 'up',
	ArrowUp: 'up',
	h: 'left',
	ArrowLeft: 'left',
	l: 'right',
	ArrowRight: 'right'
};

/** The direction a key moves the focus in, or null (modifiers other than none never move it). */
export function direction(e: Pick<KeyboardEvent, 'key' | 'metaKey' | 'ctrlKey' | 'altKey' | 'shiftKey'>): Direction | null {
	if (e.metaKey || e.ctrlKey || e.altKey || e.shiftKey) return null;
	return KEYS[e.key] ?? null;
}

/** Whether a key is a letter (j/k/h/l) rather than an arrow: arrows stay with whatever has focus. */
export function isLetter(key: string): boolean {
	return key.length === 1;
}

function locate(columns: readonly (readonly number[])[], id: number | null): [number, number] | null {
	if (id == null) return null;
	for (let c = 0; c < columns.length; c++) {
		const i = columns[c].indexOf(id);
		if (i >= 0) return [c, i];
	}
	return null;
}

/**
 * The card the focus goes to from `from` (the focused card's id). Without a focused card the
 * first key lands on `start` (the open task) when it is on the board, else on the first card.
 * At an edge the focus stays; null only when the board has no cards.
 */
export function nextCard(
	columns: readonly (readonly number[])[],
	from: number | null,
	dir: Direction,
	start: number | null = null
): number | null {
	const here = locate(columns, from);
	if (!here) {
		if (locate(columns, start)) return start;
		return columns.find((cards) => cards.length > 0)?.[0] ?? null;
	}
	const [c, i] = here;
	const cards = columns[c];
	if (dir === 'down') return cards[Math.min(i + 1, cards.length - 1)];
	if (dir === 'up') return cards[Math.max(i - 1, 0)];
	const step = dir === 'right' ? 1 : -1;
	for (let n = c + step; n >= 0 && n < columns.length; n += step) {
		const target = columns[n];
		if (target.length) return target[Math.min(i, target.length - 1)];
	}
	return cards[i];
}
