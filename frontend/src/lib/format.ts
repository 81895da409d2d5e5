/** "$0.0123" below a dollar, "$1.23" above. */
export function formatCost(usd: number | null | undefined): string {
	if (usd == null || !Number.isFinite(usd)) return '';
	return `$${usd.toFixed(Math.abs(usd) < 1 ? 4 : 2)}`;
}

/** "850 ms", "12.3 s", "2m 05s", "1h 02m". */
export function formatDuration(ms: number | null | undefined): string {
	if (ms == null || !Number.isFinite(ms) || ms < 0) return '';
	if (ms < 1000) return `${Math.round(ms)} ms`;
	const s = ms / 1000;
	if (s < 60) return `${s.toFixed(1)} s`;
	const total = Math.round(s);
	const h = Math.floor(total / 3600);
	const m = Math.floor((total % 3600) / 60);
	const sec = total % 60;
	return h ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(sec).padStart(2, '0')}s`;
}

/** "980", "12.3k", "1.2M". */
export function formatCount(n: number | null | undefined): string {
	if (n == null || !Number.isFinite(n)) return '';
	if (n < 1000) return String(n);
	if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
	return `${(n / 1_000_000).toFixed(1)}M`;
}

/** A run's duration: measured, or from its timestamps (still running: until now). */
export function runDurationMs(
	run: { duration_ms?: number | null; started_at?: string | null; finished_at?: string | null },
	now = Date.now()
): number | null {
	if (run.duration_ms != null) return run.duration_ms;
	if (!run.started_at) return null;
	const start = new Date(run.started_at).getTime();
	const end = run.finished_at ? new Date(run.finished_at).getTime() : now;
	return Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, end - start) : null;
}
