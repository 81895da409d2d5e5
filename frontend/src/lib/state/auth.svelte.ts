import { Persisted } from './persisted.svelte';

type Listener = () => void;

/**
 * The optional API token. The server asks for one (401) only when it was started with
 * KANBAN_API_TOKEN; the token then goes in `Authorization: Bearer` and in `?token=` on the
 * EventSource URL.
 */
export class AuthState {
	#token = new Persisted<string | null>('kanban.apiToken', null);
	#listeners = new Set<Listener>();
	/** True while the token prompt should be shown. */
	prompting = $state(false);
	/** True when the prompt was opened because a stored token was refused. */
	rejected = $state(false);

	get token(): string | null {
		return this.#token.current;
	}

	requireToken = () => {
		if (this.prompting) return;
		this.rejected = Boolean(this.#token.current);
		this.prompting = true;
	};

	setToken = (token: string | null) => {
		this.#token.current = token?.trim() || null;
		this.prompting = false;
		this.rejected = false;
		for (const listener of this.#listeners) listener();
	};

	dismiss = () => {
		this.prompting = false;
	};

	/** Called after the token changes, so the app can reload data and reconnect the stream. */
	onChange(listener: Listener): () => void {
		this.#listeners.add(listener);
		return () => this.#listeners.delete(listener);
	}
}

export const auth = new AuthState();
