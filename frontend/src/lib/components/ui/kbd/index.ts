import Root from './kbd.svelte';
import Shortcut from './kbd-shortcut.svelte';

export { Root, Root as Kbd, Shortcut, Shortcut as KbdShortcut };
