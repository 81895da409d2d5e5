import { describe, expect, it } from 'vitest';
import type { TemplateInput } from '$lib/api/types';
import { initialInputValues, inputPayload, serverInputErrors } from './inputs';

const input = (name: string, type: string, extra: Partial<TemplateInput> = {}): TemplateInput => ({
	name,
	title: name,
	type,
	description: '',
	required: true,
	default: null,
	options: [],
	...extra
});

const inputs = [
	input('feature', 'text'),
	input('test_command', 'string', { default: 'make test', required: false }),
	input('attempts', 'integer', { default: 3, required: false }),
	input('budget', 'number', { required: false }),
	input('dry_run', 'boolean', { default: true, required: false }),
	input('strict', 'boolean'),
	input('level', 'choice', { options: ['patch', 'minor', 'major'], default: 'minor', required: false })
];

describe('initialInputValues', () => {
	it('prefills defaults as text, and switches as booleans', () => {
		expect(initialInputValues(inputs)).toEqual({
			feature: '',
			test_command: 'make test',
			attempts: '3',
			budget: '',
			dry_run: true,
			strict: false,
			level: 'minor'
		});
	});

	it('reads a boolean default given as text', () => {
		expect(initialInputValues([input('flag', 'boolean', { default: 'true' as never })])).toEqual({ flag: true });
	});
});

describe('inputPayload', () => {
	it('sends numbers as numbers, switches as booleans, one-line strings trimmed and text as typed', () => {
		const values = {
			...initialInputValues(inputs),
			feature: '  A dark mode toggle\nwith a shortcut  ',
			test_command: '  true ',
			attempts: ' 5 ',
			budget: '1.5',
			strict: true,
			level: 'major'
		};
		expect(inputPayload(inputs, values)).toEqual({
			inputs: {
				feature: '  A dark mode toggle\nwith a shortcut  ',
				test_command: 'true',
				attempts: 5,
				budget: 1.5,
				dry_run: true,
				strict: true,
				level: 'major'
			},
			errors: {}
		});
	});

	it('leaves empty fields out (the server fills in defaults) and asks for required ones', () => {
		const values = { ...initialInputValues(inputs), test_command: '', attempts: '   ' };
		const { inputs: sent, errors } = inputPayload(inputs, values);
		expect(errors).toEqual({ feature: 'Required' });
		expect(sent).not.toHaveProperty('test_command');
		expect(sent).not.toHaveProperty('attempts');
		expect(sent).not.toHaveProperty('budget');
	});

	it('refuses what does not fit the type', () => {
		const values = {
			...initialInputValues(inputs),
			feature: 'x',
			test_command: 'one\ntwo',
			attempts: '2.5',
			budget: 'lots',
			level: 'huge'
		};
		expect(inputPayload(inputs, values).errors).toEqual({
			test_command: 'Must be one line',
			attempts: 'Must be a whole number',
			budget: 'Must be a number',
			level: 'Must be one of patch, minor, major'
		});
		expect(inputPayload(inputs, { ...values, test_command: 't', budget: '1', level: 'patch', attempts: '99999999999999999999' }).errors).toEqual({
			attempts: 'Must be a whole number'
		});
	});
});

describe('serverInputErrors', () => {
	const names = ['feature', 'test_command'];

	it("puts the workflow's input problems at their fields", () => {
		const body = {
			detail: 'inputs.feature: is required; inputs.colour: no input named colour; inputs: feature, test_command',
			errors: [
				{ field: 'inputs.feature', message: 'is required' },
				{ field: 'inputs.colour', message: 'no input named colour; inputs: feature, test_command' }
			]
		};
		expect(serverInputErrors(body, names, body.detail)).toEqual({
			fields: { feature: 'is required' },
			other: 'inputs.colour: no input named colour; inputs: feature, test_command'
		});
	});

	it("reads the request validation's locations too, joining two problems of one field", () => {
		const body = {
			detail: '…',
			errors: [
				{ loc: ['body', 'inputs', 'test_command', 'str'], msg: 'too long', type: 'x' },
				{ loc: ['inputs', 'test_command'], msg: 'bad', type: 'y' }
			]
		};
		expect(serverInputErrors(body, names, '…')).toEqual({ fields: { test_command: 'too long; bad' }, other: null });
	});

	it('keeps a message without field problems (a broken template file) for the top', () => {
		const detail = 'The workflow template .kanban/workflows/x.yaml is not valid (1 problem):\nx.yaml:3: steps: …';
		expect(serverInputErrors({ detail, problems: [] }, names, detail)).toEqual({ fields: {}, other: detail });
		expect(serverInputErrors(null, names, 'Not found')).toEqual({ fields: {}, other: 'Not found' });
	});
});
