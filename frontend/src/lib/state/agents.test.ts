import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AgentsStatus } from '$lib/api/types';
import { AgentsState } from './agents.svelte';
import { fakeApi } from '$lib/test/fixtures';

const missing: AgentsStatus = {
	runs_agents: true,
	can_run: false,
	problem: 'No Anthropic credentials: …',
	login_command: '/venv/claude_agent_sdk/_bundled/claude auth login',
	active_runs: 0,
	max_concurrent_runs: 2
};
const ok: AgentsStatus = { ...missing, can_run: true, problem: null };

describe('whether agents can run here', () => {
	beforeEach(() => vi.useFakeTimers());
	afterEach(() => vi.useRealTimers());

	it('looks again on focus and every 20 s while credentials are missing, then stops', async () => {
		const agentsStatus = vi.fn().mockResolvedValueOnce(missing).mockResolvedValueOnce(missing).mockResolvedValue(ok);
		const agents = new AgentsState(fakeApi({ agentsStatus }));
		const stop = agents.watch();
		await vi.waitFor(() => expect(agents.missingCredentials).toBe(true));
		window.dispatchEvent(new Event('focus'));
		await vi.waitFor(() => expect(agentsStatus).toHaveBeenCalledTimes(2));
		expect(agents.missingCredentials).toBe(true);
		await vi.advanceTimersByTimeAsync(20_000);
		expect(agentsStatus).toHaveBeenCalledTimes(3);
		expect(agents.missingCredentials).toBe(false);
		await vi.advanceTimersByTimeAsync(60_000);
		expect(agentsStatus).toHaveBeenCalledTimes(3); // agents can run: no more polling
		stop();
		window.dispatchEvent(new Event('focus'));
		expect(agentsStatus).toHaveBeenCalledTimes(3);
	});

	it('says nothing when another process runs the agents, and keeps the last answer when the server is away', async () => {
		const agentsStatus = vi
			.fn()
			.mockResolvedValueOnce({ ...missing, runs_agents: false })
			.mockResolvedValueOnce(missing)
			.mockRejectedValueOnce(new Error('offline'));
		const agents = new AgentsState(fakeApi({ agentsStatus }));
		await agents.check();
		expect(agents.missingCredentials).toBe(false);
		await agents.check();
		expect(agents.missingCredentials).toBe(true);
		await agents.check();
		expect(agents.status).toEqual(missing);
	});
});
