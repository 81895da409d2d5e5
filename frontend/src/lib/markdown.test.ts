import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './markdown';

describe('renderMarkdown', () => {
	it('renders GitHub-flavoured markdown', () => {
		const html = renderMarkdown('# Title\n\n- **bold** item\n- `code`\n\n| a | b |\n|---|---|\n| 1 | 2 |');
		expect(html).toContain('<h1>Title</h1>');
		expect(html).toContain('<strong>bold</strong>');
		expect(html).toContain('<code>code</code>');
		expect(html).toContain('<table>');
	});

	it('removes script tags and inline event handlers', () => {
		const html = renderMarkdown('hello <script>alert(1)</script> <img src=x onerror="alert(2)"> <b onclick="x()">b</b>');
		expect(html).not.toMatch(/<script/i);
		expect(html).not.toMatch(/onerror|onclick|alert\(/i);
		expect(html).toContain('<img src="x">');
	});

	it('drops javascript: and data: links', () => {
		const html = renderMarkdown('[click](javascript:alert(1)) <a href="JaVaScRiPt:alert(1)">x</a> [d](data:text/html;base64,PHNjcmlwdD4=)');
		expect(html).not.toMatch(/javascript:/i);
		expect(html).not.toMatch(/href="data:/i);
	});

	it('removes iframes, forms, styles and style attributes', () => {
		const html = renderMarkdown(
			'<iframe src="https://example.org"></iframe><form action="/x"><input name=a></form><style>body{}</style><p style="position:fixed">p</p>'
		);
		expect(html).not.toMatch(/<iframe|<form|<input|<style|style=/i);
		expect(html).toContain('<p>p</p>');
	});

	it('opens links in a new tab without an opener', () => {
		const html = renderMarkdown('[docs](https://example.org/docs)');
		expect(html).toContain('href="https://example.org/docs"');
		expect(html).toContain('target="_blank"');
		expect(html).toContain('rel="noopener noreferrer nofollow"');
	});

	it('returns an empty string for empty input', () => {
		expect(renderMarkdown('')).toBe('');
		expect(renderMarkdown(null)).toBe('');
	});
});
