import { describe, expect, it } from 'vitest';
import { ariaShortcut, formatShortcut, isMac, matchesShortcut, modKey, overlayOpen, shortcutKeys } from './keys';

const MAC = 'MacIntel';
const LINUX = 'Linux x86_64';
const WINDOWS = 'Win32';

function key(k: string, mods: Partial<Record<'metaKey' | 'ctrlKey' | 'altKey' | 'shiftKey', boolean>> = {}) {
	return new KeyboardEvent('keydown', { key: k, ...mods });
}

describe('platform labels', () => {
	it('tells macOS (and iOS) from the rest', () => {
		expect(isMac(MAC)).toBe(true);
		expect(isMac('iPad')).toBe(true);
		expect(isMac('macOS')).toBe(true); // navigator.userAgentData.platform
		expect(isMac(LINUX)).toBe(false);
		expect(isMac(WINDOWS)).toBe(false);
	});

	it('names the modifier ⌘ on macOS and Ctrl elsewhere', () => {
		expect(modKey(MAC)).toBe('⌘');
		expect(modKey(LINUX)).toBe('Ctrl');
		expect(modKey(WINDOWS)).toBe('Ctrl');
	});

	it('formats shortcuts the way each platform shows them', () => {
		expect(formatShortcut('mod+enter', MAC)).toBe('⌘↵');
		expect(formatShortcut('mod+enter', LINUX)).toBe('Ctrl+↵');
		expect(formatShortcut('mod+k', MAC)).toBe('⌘K');
		expect(formatShortcut('mod+k', WINDOWS)).toBe('Ctrl+K');
		expect(formatShortcut('shift+mod+p', MAC)).toBe('⇧⌘P');
		expect(formatShortcut('alt+shift+p', LINUX)).toBe('Alt+Shift+P');
		expect(formatShortcut('?', LINUX)).toBe('?');
		expect(formatShortcut('esc', MAC)).toBe('Esc');
		expect(formatShortcut('mod++', LINUX)).toBe('Ctrl++');
		expect(shortcutKeys('down', LINUX)).toEqual(['↓']);
		expect(shortcutKeys('mod+enter', LINUX)).toEqual(['Ctrl', '↵']);
	});

	it('writes aria-keyshortcuts values', () => {
		expect(ariaShortcut('mod+k', MAC)).toBe('Meta+K');
		expect(ariaShortcut('mod+k', LINUX)).toBe('Control+K');
		expect(ariaShortcut('mod+enter', LINUX)).toBe('Control+Enter');
		expect(ariaShortcut('?', LINUX)).toBe('?');
	});
});

describe('matchesShortcut', () => {
	it('takes ⌘ for mod on macOS and Ctrl elsewhere, not the other', () => {
		expect(matchesShortcut(key('k', { metaKey: true }), 'mod+k', MAC)).toBe(true);
		expect(matchesShortcut(key('k', { ctrlKey: true }), 'mod+k', MAC)).toBe(false); // a text field's kill-line there
		expect(matchesShortcut(key('k', { ctrlKey: true }), 'mod+k', LINUX)).toBe(true);
		expect(matchesShortcut(key('k', { metaKey: true }), 'mod+k', LINUX)).toBe(false);
		expect(matchesShortcut(key('K', { ctrlKey: true }), 'mod+k', LINUX)).toBe(true); // caps lock
	});

	it('wants exactly the named modifiers', () => {
		expect(matchesShortcut(key('k'), 'mod+k', LINUX)).toBe(false);
		expect(matchesShortcut(key('k', { ctrlKey: true, altKey: true }), 'mod+k', LINUX)).toBe(false);
		expect(matchesShortcut(key('Enter', { ctrlKey: true }), 'mod+enter', LINUX)).toBe(true);
		expect(matchesShortcut(key('n'), 'n', LINUX)).toBe(true);
		expect(matchesShortcut(key('n', { ctrlKey: true }), 'n', LINUX)).toBe(false);
	});

	it('lets shift be part of the character', () => {
		expect(matchesShortcut(key('?', { shiftKey: true }), '?', LINUX)).toBe(true);
		expect(matchesShortcut(key('p', { ctrlKey: true }), 'shift+mod+p', LINUX)).toBe(false);
		expect(matchesShortcut(key('P', { ctrlKey: true, shiftKey: true }), 'shift+mod+p', LINUX)).toBe(true);
		expect(matchesShortcut(key(' '), 'space', LINUX)).toBe(true);
		expect(matchesShortcut(key('Escape'), 'esc', LINUX)).toBe(true);
	});
});

describe('overlayOpen', () => {
	it('sees an open dialog or menu, not a closed one', () => {
		const root = document.createElement('div');
		expect(overlayOpen(root)).toBe(false);
		root.innerHTML = '<div role="dialog" data-state="closed"></div>';
		expect(overlayOpen(root)).toBe(false);
		root.innerHTML = '<div role="dialog" data-state="open"></div>';
		expect(overlayOpen(root)).toBe(true);
		root.innerHTML = '<div role="menu"></div>';
		expect(overlayOpen(root)).toBe(true);
	});
});
