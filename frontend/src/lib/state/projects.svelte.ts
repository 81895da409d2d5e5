import { api as defaultApi, errorMessage, type Api } from '$lib/api/client';
import type { BoardEvent, Project, ProjectCreate, ProjectDeletion, ProjectUpdate } from '$lib/api/types';

/** All projects, for the switcher. */
export class ProjectsState {
	items = $state<Project[]>([]);
	loaded = $state(false);
	loading = $state(false);
	error = $state<string | null>(null);

	#api: Api;

	constructor(api: Api = defaultApi) {
		this.#api = api;
	}

	get(id: number | null | undefined): Project | undefined {
		return id == null ? undefined : this.items.find((p) => p.id === id);
	}

	load = async () => {
		this.loading = true;
		try {
			const items = await this.#api.listProjects();
			this.items = [...items].sort(byName);
			this.error = null;
			this.loaded = true;
		} catch (err) {
			this.error = errorMessage(err);
		} finally {
			this.loading = false;
		}
	};

	create = async (body: ProjectCreate): Promise<Project> => {
		const project = await this.#api.createProject(body);
		this.#upsert(project);
		return project;
	};

	update = async (id: number, body: ProjectUpdate): Promise<Project> => {
		const project = await this.#api.updateProject(id, body);
		this.#upsert(project);
		return project;
	};

	/** What deleting the project would remove (for the confirmation that names it). */
	deletion = (id: number): Promise<ProjectDeletion> => this.#api.projectDeletion(id);

	remove = async (id: number, removeWorktrees = false): Promise<void> => {
		await this.#api.deleteProject(id, removeWorktrees);
		this.items = this.items.filter((p) => p.id !== id);
	};

	applyEvent = (event: BoardEvent) => {
		if (event.type === 'project.created' || event.type === 'project.updated') this.#upsert(event.payload);
		else if (event.type === 'project.deleted')
			this.items = this.items.filter((p) => p.id !== event.payload.id);
	};

	#upsert(project: Project) {
		const others = this.items.filter((p) => p.id !== project.id);
		this.items = [...others, project].sort(byName);
	}
}

function byName(a: Project, b: Project) {
	return a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || a.id - b.id;
}

export const projects = new ProjectsState();
