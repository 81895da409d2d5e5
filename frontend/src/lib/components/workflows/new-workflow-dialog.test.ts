import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { ApiError } from '$lib/api/client';
import type { TemplateCatalog } from '$lib/api/types';
import { WorkflowsState } from '$lib/state/workflows.svelte';
import { fakeApi, makeWorkflow } from '$lib/test/fixtures';
import NewWorkflowDialog from './new-workflow-dialog.svelte';

afterEach(() => cleanup());

const catalog: TemplateCatalog = {
	templates: [
		{
			name: 'release',
			title: 'Prepare a release',
			description: 'Changelog, bump, tests.',
			origin: 'project',
			source: '.kanban/workflows/release.yaml',
			inputs: [
				{ name: 'version', title: 'The new version', type: 'string', description: 'e.g. 2.4.0', required: true, default: null, options: [] },
				{ name: 'attempts', title: 'Attempts', type: 'integer', description: '', required: false, default: 3, options: [] },
				{ name: 'dry_run', title: 'Dry run', type: 'boolean', description: '', required: false, default: false, options: [] }
			],
			steps: [
				{ id: 'bump', title: 'Bump {{version}}', kind: 'agent', needs: [], review: 'auto', until: null, command: null },
				{ id: 'tests', title: 'Full tests', kind: 'check', needs: ['bump'], review: 'auto', until: null, command: 'make test' }
			]
		}
	],
	problems: [{ source: '.kanban/workflows/broken.yaml', line: 4, field: 'steps[0].needs[0]', message: "no step named 'x'" }]
};

function setup(startWorkflow: ReturnType<typeof vi.fn>) {
	const workflows = new WorkflowsState({ api: fakeApi({ listWorkflowTemplates: vi.fn(async () => catalog), startWorkflow }) });
	const onstarted = vi.fn();
	render(NewWorkflowDialog, { open: true, projectId: 1, workflows, onstarted });
	return { onstarted };
}

describe('NewWorkflowDialog', () => {
	it('lists the templates with their steps and the broken files; sends the inputs typed', async () => {
		const started = makeWorkflow(4);
		const startWorkflow = vi.fn(async () => started);
		const { onstarted } = setup(startWorkflow);
		const option = await screen.findByTestId('template-option');
		expect(option).toHaveTextContent('Prepare a release');
		expect(option).toHaveTextContent('This project');
		expect(option).toHaveAttribute('aria-checked', 'true');
		expect(screen.getByTestId('template-steps').querySelectorAll('li')).toHaveLength(2);
		expect(screen.getByTestId('template-problem')).toHaveTextContent(
			".kanban/workflows/broken.yaml:4: steps[0].needs[0]: no step named 'x'"
		);
		expect(screen.getByTestId('workflow-input-attempts')).toHaveValue(3);

		await fireEvent.input(screen.getByTestId('workflow-input-version'), { target: { value: ' 2.4.0 ' } });
		await fireEvent.click(screen.getByTestId('workflow-input-dry_run'));
		await fireEvent.click(screen.getByTestId('workflow-submit'));
		await waitFor(() => expect(onstarted).toHaveBeenCalledWith(started));
		expect(startWorkflow).toHaveBeenCalledWith({
			project_id: 1,
			template: 'release',
			inputs: { version: '2.4.0', attempts: 3, dry_run: true }
		});
	});

	it("shows the server's input problems at their fields and the rest at the top", async () => {
		const body = {
			detail: 'inputs.version: must be one line; inputs.colour: no input named colour',
			errors: [
				{ field: 'inputs.version', message: 'must be one line' },
				{ field: 'inputs.colour', message: 'no input named colour' }
			]
		};
		const startWorkflow = vi.fn(async () => {
			throw new ApiError(422, body.detail, body);
		});
		const { onstarted } = setup(startWorkflow);
		await fireEvent.input(await screen.findByTestId('workflow-input-version'), { target: { value: '2.4.0' } });
		await fireEvent.click(screen.getByTestId('workflow-submit'));
		const fieldError = await screen.findByTestId('workflow-input-error');
		expect(fieldError).toHaveTextContent('must be one line');
		expect(fieldError.closest('[data-input]')).toHaveAttribute('data-input', 'version');
		expect(screen.getByTestId('workflow-form-error')).toHaveTextContent('inputs.colour: no input named colour');
		expect(onstarted).not.toHaveBeenCalled();
	});

	it('asks for a required input before sending anything', async () => {
		const startWorkflow = vi.fn();
		setup(startWorkflow);
		await fireEvent.click(await screen.findByTestId('workflow-submit'));
		expect(await screen.findByTestId('workflow-input-error')).toHaveTextContent('Required');
		expect(startWorkflow).not.toHaveBeenCalled();
	});
});
