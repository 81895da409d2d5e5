/**
 * The "New from template" form: a field per template input, its starting value, the checks
 * made before sending, the `inputs` object sent, and the server's 422 answer mapped back to
 * the fields it names.
 */
import type { TemplateInput } from '$lib/api/types';

/** A field's value as the form holds it: a switch's boolean, else the text typed. */
export type InputValue = string | boolean;
export type InputValues = Record<string, InputValue>;
export type Payload = Record<string, string | number | boolean>;

const INTEGER = /^[+-]?\d+$/;

/** Each input's starting value: its default (as text, or a boolean for a switch), else empty. */
export function initialInputValues(inputs: readonly TemplateInput[]): InputValues {
	const values: InputValues = {};
	for (const input of inputs) {
		const given = input.default;
		if (input.type === 'boolean') values[input.name] = given === true || String(given).toLowerCase() === 'true';
		else values[input.name] = given == null ? '' : String(given);
	}
	return values;
}

/**
 * The `inputs` to send, or the problems by input name. Empty fields are left out (the server
 * fills in a default); numbers are sent as numbers, a switch as a boolean, text as typed (a
 * one-line string trimmed).
 */
export function inputPayload(
	inputs: readonly TemplateInput[],
	values: InputValues
): { inputs: Payload; errors: Record<string, string> } {
	const payload: Payload = {};
	const errors: Record<string, string> = {};
	for (const input of inputs) {
		const value = values[input.name];
		if (input.type === 'boolean') {
			payload[input.name] = value === true;
			continue;
		}
		const text = typeof value === 'string' ? value : '';
		const trimmed = text.trim();
		if (!trimmed) {
			if (input.required && input.default == null) errors[input.name] = 'Required';
			continue;
		}
		if (input.type === 'integer') {
			if (INTEGER.test(trimmed) && Number.isSafeInteger(Number(trimmed))) payload[input.name] = Number(trimmed);
			else errors[input.name] = 'Must be a whole number';
		} else if (input.type === 'number') {
			const n = Number(trimmed);
			if (Number.isFinite(n)) payload[input.name] = n;
			else errors[input.name] = 'Must be a number';
		} else if (input.type === 'choice') {
			if (input.options.includes(trimmed)) payload[input.name] = trimmed;
			else errors[input.name] = `Must be one of ${input.options.join(', ')}`;
		} else if (input.type === 'string') {
			if (/[\r\n]/.test(trimmed)) errors[input.name] = 'Must be one line';
			else payload[input.name] = trimmed;
		} else {
			payload[input.name] = text;
		}
	}
	return { inputs: payload, errors };
}

type FieldProblem = { field?: unknown; message?: unknown; loc?: unknown; msg?: unknown };

/**
 * A 422's problems: those naming an input (`inputs.<name>`, in the workflow's own errors or
 * the request validation's `loc`) by input name, and the rest as one message for the top of
 * the form (null when every problem has its field).
 */
export function serverInputErrors(
	body: unknown,
	names: readonly string[],
	fallback: string
): { fields: Record<string, string>; other: string | null } {
	const fields: Record<string, string> = {};
	const rest: string[] = [];
	const list = body && typeof body === 'object' && Array.isArray((body as { errors?: unknown }).errors)
		? ((body as { errors: FieldProblem[] }).errors ?? [])
		: [];
	for (const problem of list) {
		const path =
			typeof problem.field === 'string'
				? problem.field.split('.')
				: Array.isArray(problem.loc)
					? problem.loc.map(String).filter((part) => part !== 'body')
					: [];
		const message = String(problem.message ?? problem.msg ?? 'invalid');
		const name = path[0] === 'inputs' ? path[1] : undefined;
		if (name !== undefined && names.includes(name)) {
			fields[name] = fields[name] ? `${fields[name]}; ${message}` : message;
		} else {
			rest.push(path.length ? `${path.join('.')}: ${message}` : message);
		}
	}
	if (!list.length) return { fields, other: fallback };
	return { fields, other: rest.length ? rest.join('; ') : null };
}
