import { describe, expect, it } from 'vitest';
import { direction, nextCard } from './board-nav';

const key = (k: string, mods: Partial<Record<'metaKey' | 'ctrlKey' | 'altKey' | 'shiftKey', boolean>> = {}) => ({
	key: k,
	metaKey: false,
	ctrlKey: false,
	altKey: false,
	shiftKey: false,
	...mods
});

describe('direction', () => {
	it('maps j/k/h/l and the arrows', () => {
		expect(['j', 'ArrowDown', 'k', 'ArrowUp', 'h', 'ArrowLeft', 'l', 'ArrowRight'].map((k) => direction(key(k)))).toEqual([
			'down',
			'down',
			'up',
			'up',
			'left',
			'left',
			'right',
			'right'
		]);
	});

	it('ignores other keys and any modifier', () => {
		expect(direction(key('x'))).toBeNull();
		expect(direction(key('J', { shiftKey: true }))).toBeNull();
		expect(direction(key('k', { ctrlKey: true }))).toBeNull();
		expect(direction(key('ArrowDown', { metaKey: true }))).toBeNull();
		expect(direction(key('l', { altKey: true }))).toBeNull();
	});
});

describe('nextCard', () => {
	// To Do: 1 2 3 | In Progress: (empty) | Review: 4 5 | Done: 6
	const board = [[1, 2, 3], [], [4, 5], [6]];

	it('starts on the open task, else on the first card', () => {
		expect(nextCard(board, null, 'down')).toBe(1);
		expect(nextCard(board, null, 'right', 5)).toBe(5);
		expect(nextCard(board, null, 'down', 99)).toBe(1); // the open task is not on this board
		expect(nextCard([[], [7]], null, 'up')).toBe(7);
		expect(nextCard([[], []], null, 'down')).toBeNull();
	});

	it('moves within a column and stops at its ends', () => {
		expect(nextCard(board, 1, 'down')).toBe(2);
		expect(nextCard(board, 2, 'down')).toBe(3);
		expect(nextCard(board, 3, 'down')).toBe(3);
		expect(nextCard(board, 2, 'up')).toBe(1);
		expect(nextCard(board, 1, 'up')).toBe(1);
	});

	it('moves between columns at the same height, skipping empty ones', () => {
		expect(nextCard(board, 1, 'right')).toBe(4);
		expect(nextCard(board, 2, 'right')).toBe(5);
		expect(nextCard(board, 3, 'right')).toBe(5); // the column is shorter: its last card
		expect(nextCard(board, 5, 'right')).toBe(6);
		expect(nextCard(board, 4, 'left')).toBe(1);
		expect(nextCard(board, 6, 'right')).toBe(6);
		expect(nextCard(board, 1, 'left')).toBe(1);
	});

	it('treats a card that is no longer on the board as no focus', () => {
		expect(nextCard(board, 42, 'down')).toBe(1);
	});
});
