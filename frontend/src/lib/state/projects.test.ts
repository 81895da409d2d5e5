import { describe, expect, it, vi } from 'vitest';
import { ProjectsState } from './projects.svelte';
import { clampSidebarWidth, SIDEBAR_MAX, SIDEBAR_MIN } from './ui.svelte';
import { event, fakeApi, project } from '$lib/test/fixtures';

describe('ProjectsState', () => {
	it('loads, creates and applies project events, sorted by name', async () => {
		const zeta = { ...project, id: 2, name: 'zeta' };
		const api = fakeApi({
			listProjects: vi.fn(async () => [zeta, project]),
			createProject: vi.fn(async () => ({ ...project, id: 3, name: 'Alpha' }))
		});
		const projects = new ProjectsState(api);
		await projects.load();
		expect(projects.items.map((p) => p.name)).toEqual(['Demo', 'zeta']);
		await projects.create({ name: 'Alpha', workspace_path: '/tmp/a' });
		expect(projects.items.map((p) => p.id)).toEqual([3, 1, 2]);
		projects.applyEvent(event('project.updated', { ...zeta, name: 'Beta' }));
		expect(projects.items.map((p) => p.name)).toEqual(['Alpha', 'Beta', 'Demo']);
		projects.applyEvent(event('project.deleted', { id: 1 }));
		expect(projects.get(1)).toBeUndefined();
		expect(projects.items).toHaveLength(2);
	});

	it('keeps the error when loading fails', async () => {
		const projects = new ProjectsState(fakeApi({ listProjects: vi.fn(async () => Promise.reject(new Error('down'))) }));
		await projects.load();
		expect(projects.loaded).toBe(false);
		expect(projects.error).toContain('down');
	});
});

describe('sidebar width', () => {
	it('stays between the bounds and leaves room for the board', () => {
		expect(clampSidebarWidth(10)).toBe(SIDEBAR_MIN);
		expect(clampSidebarWidth(5000)).toBe(SIDEBAR_MAX);
		expect(clampSidebarWidth(700, 800)).toBe(560);
		expect(clampSidebarWidth(500.4)).toBe(500);
	});
});
