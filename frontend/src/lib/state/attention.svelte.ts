/**
 * Telling the user what needs them, as it happens: a toast for each notice (attention.ts), and,
 * when they opted in and granted the permission, a browser notification while the board is not
 * in front of them (the tab hidden or the window without focus: in front of them the toast says
 * it already). Only live events count: those after the board's first snapshot, each once, so a
 * reload, a reconnect or a replay never repeats a notice.
 */
import { toast } from 'svelte-sonner';
import type { BoardEvent } from '$lib/api/types';
import { noticeFor, type Notice, type TaskLookup } from '$lib/attention';
import { Persisted } from './persisted.svelte';

export type Permission = NotificationPermission | 'unsupported';

export type NoticeContext = TaskLookup & {
	/** The newest event the board's first snapshot reflected: events up to it are history. */
	snapshotEventId: number | null;
	/** Open the task in the sidebar. */
	open: (taskId: number) => void;
	/** Open a run's task the board does not hold (it asks the server whose run it is). */
	openRun: (runId: number) => void;
	/** The task is open in the sidebar (its approval banner is in view). */
	isOpen: (taskId: number) => boolean;
};

type Deps = {
	toast?: (notice: Notice, open: () => void) => void;
	notificationApi?: () => typeof Notification | undefined;
	inFront?: () => boolean;
};

const SEEN_LIMIT = 500;

function showToast(notice: Notice, open: () => void) {
	const options = {
		description: notice.body || undefined,
		action: { label: 'Open', onClick: open },
		duration: notice.kind === 'finished' ? 6000 : 12000
	};
	if (notice.kind === 'failed') toast.error(notice.title, options);
	else if (notice.kind === 'approval') toast.warning(notice.title, options);
	else toast.success(notice.title, options);
}

function browserNotification(): typeof Notification | undefined {
	return typeof window !== 'undefined' && 'Notification' in window ? window.Notification : undefined;
}

function boardInFront(): boolean {
	return typeof document !== 'undefined' && document.visibilityState === 'visible' && document.hasFocus();
}

export class AttentionState {
	#optIn = new Persisted<boolean>('kanban.browserNotifications', false);
	permission = $state<Permission>('default');
	#seen = new Set<number>();
	#toast: NonNullable<Deps['toast']>;
	#api: () => typeof Notification | undefined;
	#inFront: () => boolean;

	constructor(deps: Deps = {}) {
		this.#toast = deps.toast ?? showToast;
		this.#api = deps.notificationApi ?? browserNotification;
		this.#inFront = deps.inFront ?? boardInFront;
		this.permission = this.#readPermission();
	}

	/** The user asked for browser notifications (they show once the browser allows them). */
	get optedIn(): boolean {
		return this.#optIn.current;
	}

	/** Browser notifications are on: asked for and allowed. */
	get enabled(): boolean {
		return this.#optIn.current && this.permission === 'granted';
	}

	#readPermission(): Permission {
		const api = this.#api();
		return api ? api.permission : 'unsupported';
	}

	/** Ask the browser for the permission (a click's answer) and remember the choice. */
	enable = async (): Promise<Permission> => {
		const api = this.#api();
		if (!api) return (this.permission = 'unsupported');
		let answer: Permission = api.permission;
		if (answer === 'default') answer = await api.requestPermission();
		this.permission = answer;
		this.#optIn.current = answer === 'granted';
		return answer;
	};

	disable = () => {
		this.#optIn.current = false;
	};

	/** The page came back (focus, visibility): the user may have changed the site's permission meanwhile. */
	refreshPermission = () => {
		this.permission = this.#readPermission();
	};

	/** A board event arrived live: show its notice, if it has one and it is news. */
	handle = (event: BoardEvent, context: NoticeContext): Notice | null => {
		if (context.snapshotEventId == null || event.id <= context.snapshotEventId || this.#seen.has(event.id)) return null;
		const notice = noticeFor(event, context);
		if (!notice) return null;
		this.#remember(event.id);
		const taskId = notice.taskId;
		const open = taskId == null ? () => context.openRun(notice.runId) : () => context.open(taskId);
		const inFront = this.#inFront();
		// An approval for the task open beside the board is already asked there.
		if (!(inFront && notice.kind === 'approval' && taskId != null && context.isOpen(taskId))) this.#toast(notice, open);
		if (this.enabled && !inFront) this.#notify(notice, open);
		return notice;
	};

	#remember(id: number) {
		this.#seen.add(id);
		if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value as number);
	}

	#notify(notice: Notice, open: () => void) {
		const api = this.#api();
		if (!api) return;
		try {
			const shown = new api(notice.title, { body: notice.body, tag: `kanban-event-${notice.eventId}` });
			shown.onclick = () => {
				window.focus();
				open();
				shown.close();
			};
		} catch {
			// some browsers allow notifications only from a service worker: the toast still shows
		}
	}
}

export const attention = new AttentionState();
