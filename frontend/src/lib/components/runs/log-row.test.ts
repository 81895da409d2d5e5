import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen } from '@testing-library/svelte';
import type { LogEntry } from '$lib/state/run-log.svelte';
import LogRow from './log-row.svelte';

afterEach(() => cleanup());

const check = (extra: Partial<Extract<LogEntry, { kind: 'check' }>> = {}): LogEntry => ({
	key: 1,
	seq: 1,
	kind: 'check',
	command: 'make test',
	status: 'failed',
	exitCode: 2,
	output: 'FAILED tests/test_x.py::test_y',
	truncated: false,
	durationMs: 1500,
	attempt: 2,
	maxAttempts: 3,
	...extra
});

describe('LogRow: a check', () => {
	it('shows the command, its verdict, the attempt, exit code and duration; the output on demand', async () => {
		const ontoggle = vi.fn();
		const { rerender } = render(LogRow, { entry: check(), ontoggle });
		expect(screen.getByTestId('log-check-command')).toHaveTextContent('make test');
		expect(screen.getByTestId('log-check-status')).toHaveTextContent('Failed');
		expect(screen.getByTestId('log-check-attempt')).toHaveTextContent('check attempt 2 of 3');
		expect(screen.getByTestId('log-check-exit')).toHaveTextContent('exit code 2');
		expect(screen.getByTestId('log-check-facts')).toHaveTextContent('1.5 s');
		expect(screen.queryByTestId('log-check-output')).toBeNull();
		await fireEvent.click(screen.getByTestId('log-check-toggle'));
		expect(ontoggle).toHaveBeenCalled();
		await rerender({ entry: check({ truncated: true }), open: true, ontoggle });
		expect(screen.getByTestId('log-check-output')).toHaveTextContent('FAILED tests/test_x.py::test_y');
		expect(screen.getByText('Only the end of the output was kept.')).toBeInTheDocument();
	});

	it('says when it is still running, and a check step (no attempts) shows none', () => {
		render(LogRow, { entry: check({ status: 'running', exitCode: null, durationMs: null, attempt: null, output: '' }), open: true });
		expect(screen.getByTestId('log-check-status')).toHaveTextContent('Running');
		expect(screen.queryByTestId('log-check-facts')).toBeNull();
		expect(screen.queryByTestId('log-check-output')).toBeNull();
		expect(screen.getByTestId('log-check')).toHaveAttribute('data-status', 'running');
	});

	it('reads passed and timed out', () => {
		render(LogRow, { entry: check({ status: 'passed', exitCode: 0 }) });
		expect(screen.getByTestId('log-check-status')).toHaveTextContent('Passed');
		cleanup();
		render(LogRow, { entry: check({ status: 'timed_out', exitCode: null }) });
		expect(screen.getByTestId('log-check-status')).toHaveTextContent('Timed out');
	});
});
