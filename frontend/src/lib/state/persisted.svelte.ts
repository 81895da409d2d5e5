/** A value kept in localStorage, reactive through $state. Falls back to memory when storage is unavailable. */
export class Persisted<T> {
	#key: string;
	#value = $state() as T;

	constructor(key: string, initial: T) {
		this.#key = key;
		this.#value = read(key, initial);
	}

	get current(): T {
		return this.#value;
	}

	set current(value: T) {
		this.#value = value;
		try {
			if (value === null || value === undefined) localStorage.removeItem(this.#key);
			else localStorage.setItem(this.#key, JSON.stringify(value));
		} catch {
			// storage full or disabled: keep the in-memory value
		}
	}
}

function read<T>(key: string, initial: T): T {
	try {
		const raw = typeof localStorage !== 'undefined' ? localStorage.getItem(key) : null;
		return raw === null ? initial : (JSON.parse(raw) as T);
	} catch {
		return initial;
	}
}
