import Root from './badge.svelte';

export { Root, Root as Badge };
