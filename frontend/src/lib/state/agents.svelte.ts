/**
 * Whether agents can run here (`GET /api/agents/status`), for the board's credentials banner.
 * Checked when the board opens, when the window gets the focus back (the user may have just
 * logged in, in a terminal), after a run failed, and every 20 s while agents cannot run.
 */
import { api as defaultApi, type Api } from '$lib/api/client';
import type { AgentsStatus } from '$lib/api/types';

const RECHECK_MS = 20_000;

/** The variable that gives the agents an API key (the other way besides logging the CLI in). */
export const API_KEY_VARIABLE = 'ANTHROPIC_API_KEY';

export class AgentsState {
	status = $state<AgentsStatus | null>(null);
	#api: Api;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#watching = 0;
	#seq = 0;

	constructor(api: Api = defaultApi) {
		this.#api = api;
	}

	/** This process runs agents but finds no credentials for them. */
	get missingCredentials(): boolean {
		return !!this.status && this.status.runs_agents && !this.status.can_run;
	}

	check = async (): Promise<void> => {
		const seq = ++this.#seq;
		try {
			const status = await this.#api.agentsStatus();
			if (seq === this.#seq) this.status = status;
		} catch {
			// unreachable server: the connection indicator says so; keep what we knew
		}
		if (seq === this.#seq) this.#schedule();
	};

	/** Keep the status current while the board is open; returns the stop. */
	watch = (): (() => void) => {
		this.#watching++;
		const onFocus = () => void this.check();
		window.addEventListener('focus', onFocus);
		void this.check();
		return () => {
			window.removeEventListener('focus', onFocus);
			this.#watching--;
			if (!this.#watching && this.#timer) clearTimeout(this.#timer);
		};
	};

	#schedule() {
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = null;
		if (this.#watching && this.missingCredentials) this.#timer = setTimeout(() => void this.check(), RECHECK_MS);
	}
}

export const agents = new AgentsState();
