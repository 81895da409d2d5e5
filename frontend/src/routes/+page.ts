import { board } from '$lib/state/board.svelte';

let started = false;

/**
 * On the app's first page load, ask for the board the URL names at once: the request and the
 * server's answer then overlap the app mounting (2,000 cards: bench/ui.py). Later navigations
 * load it from the page as before.
 */
export function load({ url, untrack }) {
	if (started) return;
	started = true;
	untrack(() => {
		const id = Number(url.searchParams.get('project'));
		if (Number.isInteger(id) && id > 0) board.prefetch(id, url.searchParams.get('q') ?? '');
	});
}
