/**
 * The Plugin Manager's data: registry search (both registries, per-registry errors, paging),
 * installed plugins, and the `plugin.*` events of the unfiltered live stream.
 */
import { errorMessage, pluginsApi, type PluginSource, type PluginsApi } from '$lib/api/client';
import {
	PLUGIN_EVENT_TYPES,
	type InstallOption,
	type Plugin,
	type PluginEvent,
	type PluginInstall,
	type PluginTest,
	type PluginUpdate,
	type SearchItem,
	type SearchResults,
	type StoredSetting
} from '$lib/api/types';
import { followEvents } from '$lib/events/follow';

export type {
	InstallOption,
	Plugin,
	PluginEvent,
	PluginInstall,
	PluginsApi,
	PluginTest,
	PluginUpdate,
	SearchItem,
	SearchResults,
	StoredSetting
};
export type SearchSource = PluginSource;

export const SOURCE_LABELS: Record<string, string> = {
	glama: 'Glama',
	official: 'Official registry',
	custom: 'Custom',
	builtin: 'Built in'
};

export const REGISTRY_NAMES: Record<string, string> = {
	glama: 'Glama registry',
	official: 'Official MCP Registry'
};

export type RegistryProblem = { registry: string; message: string };

/**
 * A search's registry errors as the page says them. The server's reason already names its
 * registry ("Glama registry unreachable: …"), so it is shown as it is, once. When another
 * registry answered, its results are shown and the message says so; when none did (offline),
 * the page says that instead of "no servers found".
 */
export function registryProblems(
	errors: Record<string, string>,
	source: SearchSource
): { problems: RegistryProblem[]; noneAnswered: boolean } {
	const asked = source === 'all' ? Object.keys(REGISTRY_NAMES) : [source];
	const failed = Object.keys(errors).filter((r) => asked.includes(r) || !(r in REGISTRY_NAMES));
	const answered = asked.filter((r) => !(r in errors));
	const sentence = (text: string) => (/[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`);
	const problems = failed.map((registry) => {
		const reason = sentence(errors[registry]);
		const named = reason.includes(REGISTRY_NAMES[registry] ?? registry) ? reason : `${REGISTRY_NAMES[registry] ?? registry}: ${reason}`;
		const others = answered.map((r) => REGISTRY_NAMES[r] ?? r).join(' and ');
		return { registry, message: answered.length ? `${named} Showing results from the ${others} only.` : named };
	});
	return { problems, noneAnswered: failed.length > 0 && answered.length === 0 };
}

/** Whether a plugin is switched on for a project (off until switched on). */
export function enabledFor(plugin: Plugin, projectId: number | null): boolean {
	if (projectId == null) return false;
	return plugin.projects.some((p) => p.project_id === projectId && p.enabled);
}

export class PluginsState {
	// ---- search ----
	query = $state('');
	source = $state<SearchSource>('all');
	results = $state<SearchItem[]>([]);
	errors = $state<Record<string, string>>({});
	nextCursor = $state<string | null>(null);
	searching = $state(false);
	searched = $state(false);
	searchError = $state<string | null>(null);
	/** The query the current results are for (for installs: helps the server find the entry again). */
	resultsQuery = $state('');

	// ---- installed ----
	installed = $state<Plugin[]>([]);
	loaded = $state(false);
	loadError = $state<string | null>(null);
	/** Plugin ids with a connection test running. */
	testing = $state<number[]>([]);

	#api: PluginsApi;
	#searchSeq = 0;

	constructor(api: PluginsApi = pluginsApi) {
		this.#api = api;
	}

	get(id: number): Plugin | undefined {
		return this.installed.find((p) => p.id === id);
	}

	load = async () => {
		try {
			this.installed = sortPlugins(await this.#api.list());
			this.loadError = null;
			this.loaded = true;
		} catch (err) {
			this.loadError = errorMessage(err);
		}
	};

	/** A new search (first page). Older answers arriving late are ignored. */
	search = async (q = this.query, source = this.source) => {
		const seq = ++this.#searchSeq;
		this.searching = true;
		try {
			const page = await this.#api.search({ q: q.trim(), source });
			if (seq !== this.#searchSeq) return;
			this.results = page.items;
			this.errors = page.errors;
			this.nextCursor = page.next_cursor;
			this.resultsQuery = q.trim();
			this.searchError = null;
			this.searched = true;
		} catch (err) {
			if (seq !== this.#searchSeq) return;
			this.results = [];
			this.errors = {};
			this.nextCursor = null;
			this.searchError = errorMessage(err);
			this.searched = true;
		} finally {
			if (seq === this.#searchSeq) this.searching = false;
		}
	};

	/** The next page of the current search, appended. */
	loadMore = async () => {
		const cursor = this.nextCursor;
		if (!cursor || this.searching) return;
		const seq = ++this.#searchSeq;
		this.searching = true;
		try {
			const page = await this.#api.search({ q: this.resultsQuery, source: this.source, cursor });
			if (seq !== this.#searchSeq) return;
			const seen = new Set(this.results.map(keyOf));
			this.results = [...this.results, ...page.items.filter((i) => !seen.has(keyOf(i)))];
			this.errors = page.errors;
			this.nextCursor = page.next_cursor;
		} catch (err) {
			if (seq === this.#searchSeq) this.searchError = errorMessage(err);
		} finally {
			if (seq === this.#searchSeq) this.searching = false;
		}
	};

	install = async (body: PluginInstall): Promise<Plugin> => {
		const plugin = await this.#api.install(body);
		this.#upsert(plugin);
		this.#markInstalled(plugin);
		return plugin;
	};

	update = async (id: number, body: PluginUpdate): Promise<Plugin> => {
		const plugin = await this.#api.update(id, body);
		this.#upsert(plugin);
		return plugin;
	};

	setProject = async (id: number, projectId: number, enabled: boolean): Promise<Plugin> => {
		const plugin = await this.#api.setProject(id, projectId, enabled);
		this.#upsert(plugin);
		return plugin;
	};

	test = async (id: number): Promise<PluginTest> => {
		this.testing = [...this.testing, id];
		try {
			const result = await this.#api.test(id);
			const plugin = this.get(id);
			if (plugin) this.#upsert({ ...plugin, last_test: result });
			return result;
		} finally {
			this.testing = this.testing.filter((t) => t !== id);
		}
	};

	remove = async (id: number): Promise<void> => {
		const plugin = this.get(id);
		await this.#api.remove(id);
		this.#drop(id, plugin?.name);
	};

	applyEvent = (event: PluginEvent) => {
		if (event.type === 'plugin.removed') this.#drop(event.payload.id, event.payload.name);
		else {
			this.#upsert(event.payload);
			this.#markInstalled(event.payload);
		}
	};

	#upsert(plugin: Plugin) {
		const current = this.get(plugin.id);
		// Events and answers can cross: keep the newer one.
		if (current && current.updated_at > plugin.updated_at) return;
		this.installed = sortPlugins([...this.installed.filter((p) => p.id !== plugin.id), plugin]);
	}

	#drop(id: number, name?: string) {
		this.installed = this.installed.filter((p) => p.id !== id);
		if (name)
			this.results = this.results.map((r) =>
				r.installed?.includes(name) ? { ...r, installed: r.installed.filter((n) => n !== name) } : r
			);
	}

	#markInstalled(plugin: Plugin) {
		if (!plugin.source_ref) return;
		this.results = this.results.map((r) =>
			r.source === plugin.source && r.source_ref === plugin.source_ref && !r.installed?.includes(plugin.name)
				? { ...r, installed: [...(r.installed ?? []), plugin.name] }
				: r
		);
	}
}

function keyOf(item: SearchItem): string {
	return `${item.source}:${item.source_ref}`;
}

function sortPlugins(items: Plugin[]): Plugin[] {
	return [...items].sort((a, b) => Number(b.builtin) - Number(a.builtin) || a.title.localeCompare(b.title) || a.id - b.id);
}

/** The `plugin.*` events of the live stream (see followEvents). */
export function followPluginEvents(
	onEvent: (event: PluginEvent) => void,
	onResync: () => void,
	create?: (url: string) => EventSource
): () => void {
	return followEvents<PluginEvent>(PLUGIN_EVENT_TYPES, onEvent, onResync, create);
}

export const plugins = new PluginsState();
