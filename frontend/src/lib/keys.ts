/**
 * Keyboard shortcuts: the labels shown for them (⌘ on macOS, Ctrl elsewhere) and the checks
 * shared by every page's key handlers. A shortcut is written `mod+enter`, `shift+/`, `k`: keys
 * joined by `+`, `mod` being ⌘ on macOS and Ctrl elsewhere.
 */

/** The platform string the browser reports (empty outside a browser). */
export function currentPlatform(): string {
	if (typeof navigator === 'undefined') return '';
	const data = (navigator as Navigator & { userAgentData?: { platform?: string } }).userAgentData;
	return data?.platform || navigator.platform || navigator.userAgent || '';
}

/** macOS and iOS, where the command key (⌘) is the shortcut modifier. */
export function isMac(platform: string = currentPlatform()): boolean {
	return /mac|iphone|ipad|ipod/i.test(platform);
}

/** The label of the shortcut modifier: ⌘ on macOS, Ctrl elsewhere. */
export function modKey(platform: string = currentPlatform()): string {
	return isMac(platform) ? '⌘' : 'Ctrl';
}

const MAC_LABELS: Record<string, string> = {
	mod: '⌘',
	meta: '⌘',
	ctrl: '⌃',
	alt: '⌥',
	shift: '⇧'
};

const OTHER_LABELS: Record<string, string> = {
	mod: 'Ctrl',
	meta: 'Super',
	ctrl: 'Ctrl',
	alt: 'Alt',
	shift: 'Shift'
};

const KEY_LABELS: Record<string, string> = {
	enter: '↵',
	escape: 'Esc',
	esc: 'Esc',
	space: 'Space',
	tab: 'Tab',
	up: '↑',
	arrowup: '↑',
	down: '↓',
	arrowdown: '↓',
	left: '←',
	arrowleft: '←',
	right: '→',
	arrowright: '→',
	backspace: '⌫'
};

/** Each key of a shortcut as it is labelled on this platform: `mod+enter` → ['Ctrl', '↵']. */
export function shortcutKeys(shortcut: string, platform: string = currentPlatform()): string[] {
	const modifiers = isMac(platform) ? MAC_LABELS : OTHER_LABELS;
	return splitShortcut(shortcut).map((part) => {
		const key = part.toLowerCase();
		return modifiers[key] ?? KEY_LABELS[key] ?? (part.length === 1 ? part.toUpperCase() : part);
	});
}

/**
 * A shortcut as one label: `mod+enter` is ⌘↵ on macOS (its symbols run together, as its menus
 * show them) and Ctrl+↵ elsewhere.
 */
export function formatShortcut(shortcut: string, platform: string = currentPlatform()): string {
	return shortcutKeys(shortcut, platform).join(isMac(platform) ? '' : '+');
}

/** The shortcut in the form of the `aria-keyshortcuts` attribute: `mod+k` → `Control+K`. */
export function ariaShortcut(shortcut: string, platform: string = currentPlatform()): string {
	const names: Record<string, string> = {
		mod: isMac(platform) ? 'Meta' : 'Control',
		meta: 'Meta',
		ctrl: 'Control',
		alt: 'Alt',
		shift: 'Shift',
		enter: 'Enter',
		escape: 'Escape',
		esc: 'Escape',
		space: 'Space'
	};
	return splitShortcut(shortcut)
		.map((part) => names[part.toLowerCase()] ?? (part.length === 1 ? part.toUpperCase() : part))
		.join('+');
}

/**
 * Whether a key event is this shortcut, with exactly its modifiers (`mod` is the platform's:
 * ⌘ on macOS, where Ctrl+K is a text field's "delete to the end of the line").
 */
export function matchesShortcut(e: KeyboardEvent, shortcut: string, platform: string = currentPlatform()): boolean {
	const parts = splitShortcut(shortcut).map((p) => p.toLowerCase());
	const key = parts[parts.length - 1];
	const mods = new Set(parts.slice(0, -1));
	const mac = isMac(platform);
	const wantMeta = mods.has('meta') || (mods.has('mod') && mac);
	const wantCtrl = mods.has('ctrl') || (mods.has('mod') && !mac);
	if (e.metaKey !== wantMeta || e.ctrlKey !== wantCtrl || e.altKey !== mods.has('alt')) return false;
	// Shift is part of the character for keys like `?`; only a named `shift` is required.
	if (mods.has('shift') && !e.shiftKey) return false;
	const pressed = e.key.toLowerCase();
	return pressed === key || (key === 'space' && pressed === ' ') || (key === 'esc' && pressed === 'escape');
}

function splitShortcut(shortcut: string): string[] {
	// `mod++` would be the plus key; `shift+/` is the slash key with shift.
	const parts = shortcut.split('+');
	const out: string[] = [];
	for (let i = 0; i < parts.length; i++) {
		if (parts[i] === '' && i < parts.length - 1) {
			out.push('+');
			i++;
		} else if (parts[i] !== '') out.push(parts[i]);
	}
	return out;
}

/** A dialog, menu or list box is open: single-key shortcuts belong to it then. */
export function overlayOpen(root: ParentNode = document): boolean {
	return Boolean(
		root.querySelector(
			'[role="dialog"][data-state="open"], [role="alertdialog"][data-state="open"], [role="menu"], [role="listbox"]'
		)
	);
}
