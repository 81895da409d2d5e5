/**
 * The Settings page's notifications: channels (their URL is write-only, the server shows a
 * hint), the test button's outcome, and the delivery log. Channel changes are not board
 * events: the page reloads what it shows after each change, and the log on demand.
 */
import { errorMessage, notificationsApi, type NotificationsApi } from '$lib/api/client';
import type {
	ChannelCreate,
	ChannelUpdate,
	Delivery,
	DeliveryStatus,
	NotificationChannel,
	NotificationKind
} from '$lib/api/types';

export type { ChannelCreate, ChannelUpdate, Delivery, DeliveryStatus, NotificationChannel, NotificationKind };

/** Every kind, in the order the server lists them, with what the settings page calls it. */
export const KINDS: { kind: NotificationKind; label: string; hint: string }[] = [
	{ kind: 'approval_requested', label: 'Approval needed', hint: 'An agent waits for your answer to a tool request' },
	{ kind: 'run_succeeded', label: 'Ready for review', hint: 'A run succeeded and its task waits in Review' },
	{ kind: 'run_failed', label: 'Run failed', hint: 'A run ended with an error' },
	{ kind: 'workflow_done', label: 'Workflow done', hint: 'Every step of a workflow is done' }
];

export const ALL_KINDS: NotificationKind[] = KINDS.map((k) => k.kind);

const KIND_LABELS: Record<string, string> = {
	...Object.fromEntries(KINDS.map((k) => [k.kind, k.label])),
	test: 'Test'
};

/** A delivery's kind as the log shows it. */
export function kindLabel(kind: string): string {
	return KIND_LABELS[kind] ?? kind;
}

/**
 * The channel's kinds with one switched on or off, in the usual order. A channel needs at
 * least one kind: switching off the last one gives null (nothing to save).
 */
export function withKind(events: readonly NotificationKind[], kind: NotificationKind, on: boolean): NotificationKind[] | null {
	const next = ALL_KINDS.filter((k) => (k === kind ? on : events.includes(k)));
	return next.length ? next : null;
}

/** The colour a delivery's status badge gets. */
export function statusTone(status: DeliveryStatus): 'success' | 'destructive' | 'muted' | 'warning' {
	if (status === 'delivered') return 'success';
	if (status === 'failed') return 'destructive';
	if (status === 'sending') return 'warning';
	return 'muted';
}

/** Example URLs the add form lists (apprise's syntax: https://github.com/caronc/apprise/wiki). */
export const URL_EXAMPLES = [
	'ntfy://topic',
	'discord://webhook_id/token',
	'slack://tokenA/tokenB/tokenC/#channel',
	'mailto://user:password@example.com',
	'json://host:port/path'
];

export class NotificationsState {
	channels = $state<NotificationChannel[]>([]);
	deliveries = $state<Delivery[]>([]);
	loaded = $state(false);
	loadError = $state<string | null>(null);
	logError = $state<string | null>(null);
	/** Channel ids with a test being sent. */
	testing = $state<number[]>([]);

	#api: NotificationsApi;

	constructor(api: NotificationsApi = notificationsApi) {
		this.#api = api;
	}

	get(id: number): NotificationChannel | undefined {
		return this.channels.find((c) => c.id === id);
	}

	load = async () => {
		try {
			this.channels = sortChannels(await this.#api.listChannels());
			this.loadError = null;
			this.loaded = true;
		} catch (err) {
			this.loadError = errorMessage(err);
		}
		await this.loadLog();
	};

	loadLog = async () => {
		try {
			this.deliveries = await this.#api.listDeliveries({ limit: 100 });
			this.logError = null;
		} catch (err) {
			this.logError = errorMessage(err);
		}
	};

	create = async (body: ChannelCreate): Promise<NotificationChannel> => {
		const channel = await this.#api.createChannel(body);
		this.#upsert(channel);
		return channel;
	};

	update = async (id: number, body: ChannelUpdate): Promise<NotificationChannel> => {
		const channel = await this.#api.updateChannel(id, body);
		this.#upsert(channel);
		return channel;
	};

	remove = async (id: number): Promise<void> => {
		await this.#api.deleteChannel(id);
		this.channels = this.channels.filter((c) => c.id !== id);
		this.deliveries = this.deliveries.filter((d) => d.channel_id !== id);
	};

	/** Send a test now; the outcome heads the log. */
	test = async (id: number): Promise<Delivery> => {
		this.testing = [...this.testing, id];
		try {
			const delivery = await this.#api.testChannel(id);
			this.deliveries = [delivery, ...this.deliveries.filter((d) => d.id !== delivery.id)];
			return delivery;
		} finally {
			this.testing = this.testing.filter((t) => t !== id);
		}
	};

	#upsert(channel: NotificationChannel) {
		this.channels = sortChannels([...this.channels.filter((c) => c.id !== channel.id), channel]);
		this.deliveries = this.deliveries.map((d) =>
			d.channel_id === channel.id && d.channel_name !== channel.name ? { ...d, channel_name: channel.name } : d
		);
	}
}

function sortChannels(items: NotificationChannel[]): NotificationChannel[] {
	return [...items].sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
}
