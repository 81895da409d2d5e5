import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const marked = new Marked({ gfm: true, breaks: true, async: false });

let hooked = false;
function purifier() {
	if (!hooked) {
		// Links open in a new tab, without giving that tab a handle on this one.
		DOMPurify.addHook('afterSanitizeAttributes', (node) => {
			if (node.tagName === 'A' && node.getAttribute('href')) {
				node.setAttribute('target', '_blank');
				node.setAttribute('rel', 'noopener noreferrer nofollow');
			}
		});
		hooked = true;
	}
	return DOMPurify;
}

/** Recent results: a virtual list renders the same rows again as they scroll back into view. */
const cache = new Map<string, string>();
const CACHE_SIZE = 500;

/** Markdown → HTML that is safe to put in {@html}: scripts, event handlers, javascript: URLs and styles are removed. */
export function renderMarkdown(source: string | null | undefined): string {
	if (!source) return '';
	const cached = cache.get(source);
	if (cached !== undefined) return cached;
	const html = marked.parse(source) as string;
	const safe = purifier().sanitize(html, {
		USE_PROFILES: { html: true },
		FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
		FORBID_ATTR: ['style']
	});
	if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
	cache.set(source, safe);
	return safe;
}
