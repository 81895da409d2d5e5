import Root from './kbd.svelte';

export { Root, Root as Kbd };
