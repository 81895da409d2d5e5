import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, describeDetail, eventsUrl, fieldErrors } from './client';
import { auth } from '$lib/state/auth.svelte';

function respond(status: number, body: unknown) {
	return vi.fn(async (_req: Request) =>
		new Response(body === undefined ? null : JSON.stringify(body), {
			status,
			headers: { 'content-type': 'application/json' }
		})
	);
}

afterEach(() => {
	vi.unstubAllGlobals();
	auth.setToken(null);
	auth.dismiss();
});

describe('api client', () => {
	it('calls relative /api URLs and returns the data', async () => {
		const fetch = respond(200, { status: 'ok', version: '1', database: 'sqlite', revision: '0001' });
		vi.stubGlobal('fetch', fetch);
		await expect(api.health()).resolves.toMatchObject({ status: 'ok' });
		const request = fetch.mock.calls[0][0] as Request;
		expect(new URL(request.url).pathname).toBe('/api/health');
		expect(new URL(request.url).origin).toBe(location.origin);
	});

	it('maps errors to ApiError with status, detail and body', async () => {
		const body = { detail: 'Task KAN-1 was changed by someone else', current: { id: 1, version: 3 } };
		vi.stubGlobal('fetch', respond(409, body));
		const err = await api.updateTask(1, { version: 2, title: 'x' }).catch((e) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err.status).toBe(409);
		expect(err.detail).toBe('Task KAN-1 was changed by someone else');
		expect(err.body).toEqual(body);
	});

	it('makes validation errors readable', () => {
		expect(
			describeDetail({ detail: [{ loc: ['body', 'title'], msg: 'String should have at least 1 character' }] }, 'x')
		).toBe('title: String should have at least 1 character');
		expect(describeDetail(null, '500 Internal Server Error')).toBe('500 Internal Server Error');
	});

	it('reports a network failure as status 0', async () => {
		vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
		const err = await api.listProjects().catch((e) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err.status).toBe(0);
	});

	it('asks for a token on 401, then sends it as a Bearer header', async () => {
		vi.stubGlobal('fetch', respond(401, { detail: 'This server needs an API token' }));
		await api.listProjects().catch(() => {});
		expect(auth.prompting).toBe(true);

		auth.setToken('s3cret');
		expect(auth.prompting).toBe(false);
		expect(localStorage.getItem('kanban.apiToken')).toBe('"s3cret"');
		const fetch = respond(200, []);
		vi.stubGlobal('fetch', fetch);
		await api.listProjects();
		expect((fetch.mock.calls[0][0] as Request).headers.get('Authorization')).toBe('Bearer s3cret');
	});

	it('puts the token and last event id on the EventSource URL', () => {
		expect(eventsUrl(3)).toBe('/api/events?project_id=3');
		auth.setToken('a b');
		expect(eventsUrl(3, 17)).toBe('/api/events?project_id=3&last_event_id=17&token=a+b');
	});
});

describe('fieldErrors', () => {
	const fields = ['name', 'key', 'max_turns', 'allowed_tools', 'workspace_path'];

	it("puts a 422's validation errors at their fields, the rest under ''", () => {
		const err = new ApiError(422, 'max_turns: too big; allowed_tools.1: bad; version: unknown field', {
			detail: '…',
			errors: [
				{ loc: ['max_turns'], msg: 'Input should be less than or equal to 10000' },
				{ loc: ['allowed_tools', 1], msg: 'String should match pattern' },
				{ loc: ['version'], msg: 'unknown field' },
				{ loc: ['query', 'name'], msg: 'String should have at least 1 character' }
			]
		});
		expect(fieldErrors(err, fields)).toEqual({
			max_turns: 'Input should be less than or equal to 10000',
			allowed_tools: 'String should match pattern',
			'': 'version: unknown field',
			name: 'String should have at least 1 character'
		});
	});

	it("takes a service's 'field: message' detail and a 409's field", () => {
		const missing = new ApiError(422, "workspace_path: folder '/nope' does not exist on this machine", {});
		expect(fieldErrors(missing, fields)).toEqual({ workspace_path: "folder '/nope' does not exist on this machine" });
		const taken = new ApiError(409, "The key 'KAN' is used by another project", { detail: '…', field: 'key' });
		expect(fieldErrors(taken, fields)).toEqual({ key: "The key 'KAN' is used by another project" });
		expect(fieldErrors(new ApiError(409, 'busy', {}), fields)).toEqual({ '': 'busy' });
		expect(fieldErrors(new Error('offline'), fields)).toEqual({ '': 'offline' });
	});
});
