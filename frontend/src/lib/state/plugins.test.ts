import { describe, expect, it, vi } from 'vitest';
import { followPluginEvents, PluginsState, registryProblems, type Plugin, type PluginsApi, type SearchItem } from './plugins.svelte';
import { ApiError } from '$lib/api/client';

function item(source: 'glama' | 'official', ref: string, extra: Partial<SearchItem> = {}): SearchItem {
	return { source, source_ref: ref, name: ref, key: `${source}:${ref}`, installed: [], ...extra } as SearchItem;
}

function plugin(id: number, extra: Partial<Plugin> = {}): Plugin {
	return {
		id,
		name: `p${id}`,
		title: `Plugin ${id}`,
		description: '',
		source: 'official',
		source_ref: `ref${id}`,
		transport: 'stdio',
		command: 'uvx',
		args: [],
		url: null,
		builtin: false,
		enabled: true,
		env: [],
		headers: [],
		settings: [],
		settings_schema: {},
		projects: [],
		last_test: null,
		installed_at: '2026-01-01T00:00:00Z',
		updated_at: '2026-01-01T00:00:00Z',
		...extra
	} as Plugin;
}

function fakeApi(overrides: Partial<PluginsApi> = {}): PluginsApi {
	return {
		list: vi.fn(async () => []),
		search: vi.fn(async () => ({ items: [], next_cursor: null, errors: {} })),
		install: vi.fn(),
		update: vi.fn(),
		setProject: vi.fn(),
		test: vi.fn(),
		remove: vi.fn(async () => undefined),
		...overrides
	} as PluginsApi;
}

describe('PluginsState search', () => {
	it('keeps one registry’s results when the other failed, and pages with the cursor', async () => {
		const search = vi
			.fn()
			.mockResolvedValueOnce({ items: [item('official', 'a')], next_cursor: 'c1', errors: { glama: 'timed out' } })
			.mockResolvedValueOnce({ items: [item('official', 'a'), item('official', 'b')], next_cursor: null, errors: {} });
		const state = new PluginsState(fakeApi({ search }));
		await state.search(' weather ', 'all');
		expect(search).toHaveBeenLastCalledWith({ q: 'weather', source: 'all' });
		expect(state.results.map((r) => r.source_ref)).toEqual(['a']);
		expect(state.errors).toEqual({ glama: 'timed out' });
		expect(state.nextCursor).toBe('c1');
		await state.loadMore();
		expect(search).toHaveBeenLastCalledWith({ q: 'weather', source: 'all', cursor: 'c1' });
		expect(state.results.map((r) => r.source_ref)).toEqual(['a', 'b']);
		expect(state.nextCursor).toBeNull();
		expect(state.errors).toEqual({});
	});

	it('shows the API’s detail when the search itself fails', async () => {
		const state = new PluginsState(fakeApi({ search: vi.fn().mockRejectedValue(new ApiError(422, 'bad cursor', null)) }));
		await state.search('x');
		expect(state.searchError).toBe('bad cursor');
		expect(state.results).toEqual([]);
	});
});

describe('PluginsState installed', () => {
	it('installs, marks the result installed, applies events and removals', async () => {
		const installed = plugin(5, { name: 'weather', source_ref: 'io.x/weather' });
		const state = new PluginsState(
			fakeApi({
				search: vi.fn(async () => ({ items: [item('official', 'io.x/weather')], next_cursor: null, errors: {} })),
				install: vi.fn(async () => installed)
			})
		);
		await state.search('weather');
		await state.install({ source: 'official', source_ref: 'io.x/weather' });
		expect(state.installed.map((p) => p.id)).toEqual([5]);
		expect(state.results[0].installed).toEqual(['weather']);

		state.applyEvent({ type: 'plugin.updated', payload: { ...installed, title: 'Old', updated_at: '2025-01-01T00:00:00Z' } });
		expect(state.get(5)?.title).toBe('Plugin 5'); // an older copy does not win
		state.applyEvent({ type: 'plugin.updated', payload: { ...installed, title: 'New', updated_at: '2026-02-01T00:00:00Z' } });
		expect(state.get(5)?.title).toBe('New');
		state.applyEvent({ type: 'plugin.installed', payload: plugin(6, { builtin: true, title: 'Zed' }) });
		expect(state.installed.map((p) => p.id)).toEqual([6, 5]); // built-in first

		state.applyEvent({ type: 'plugin.removed', payload: { id: 5, name: 'weather' } });
		expect(state.installed.map((p) => p.id)).toEqual([6]);
		expect(state.results[0].installed).toEqual([]);
	});
});

describe('followPluginEvents', () => {
	it('listens to plugin events on the stream without a project, and resyncs after a drop', () => {
		const listeners = new Map<string, (e: MessageEvent) => void>();
		const es = {
			readyState: 1,
			onopen: null as null | (() => void),
			onerror: null as null | (() => void),
			addEventListener: (type: string, fn: (e: MessageEvent) => void) => listeners.set(type, fn),
			close: vi.fn()
		};
		const urls: string[] = [];
		const onEvent = vi.fn();
		const onResync = vi.fn();
		const stop = followPluginEvents(onEvent, onResync, (url) => {
			urls.push(url);
			return es as unknown as EventSource;
		});
		expect(urls).toEqual(['/api/events']);
		expect([...listeners.keys()]).toEqual(['plugin.installed', 'plugin.updated', 'plugin.removed']);
		listeners.get('plugin.removed')!(new MessageEvent('plugin.removed', { data: JSON.stringify({ payload: { id: 1, name: 'x' } }) }));
		expect(onEvent).toHaveBeenCalledWith({ type: 'plugin.removed', payload: { id: 1, name: 'x' } });
		es.onerror!();
		es.onopen!();
		expect(onResync).toHaveBeenCalledTimes(1);
		stop();
		expect(es.close).toHaveBeenCalled();
	});
});

describe('registry errors as the search page says them', () => {
	const glamaDown = 'Glama registry unreachable: could not connect (connection refused)';
	const officialDown = 'Official MCP Registry unreachable: timed out after 10 s';

	it('one registry down: its reason once, and that the other one answered', () => {
		expect(registryProblems({ glama: glamaDown }, 'all')).toEqual({
			problems: [
				{
					registry: 'glama',
					message: `${glamaDown}. Showing results from the Official MCP Registry only.`
				}
			],
			noneAnswered: false
		});
	});

	it('every registry asked is down: no claim about results from another one', () => {
		const both = registryProblems({ glama: glamaDown, official: officialDown }, 'all');
		expect(both.noneAnswered).toBe(true);
		expect(both.problems.map((p) => p.message)).toEqual([`${glamaDown}.`, `${officialDown}.`]);
		const one = registryProblems({ official: officialDown }, 'official');
		expect(one).toEqual({ problems: [{ registry: 'official', message: `${officialDown}.` }], noneAnswered: true });
		for (const { message } of [...both.problems, ...one.problems]) {
			expect(message.match(/unreachable/g)).toHaveLength(1);
			expect(message).not.toContain('other registry');
		}
	});

	it('names the registry when its reason does not, and says nothing without errors', () => {
		expect(registryProblems({ glama: 'returned HTTP 503' }, 'glama').problems[0].message).toBe(
			'Glama registry: returned HTTP 503.'
		);
		expect(registryProblems({}, 'all')).toEqual({ problems: [], noneAnswered: false });
	});
});
