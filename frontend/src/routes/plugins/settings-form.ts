/**
 * Turns a registry's JSON settings schema (and, for an installed plugin, the settings the API
 * reports) into form fields, checks them, and builds the `settings` payload.
 *
 * Secret values are never shown by the API: a secret field starts empty, and an empty secret
 * field in an update is left out of the payload so the stored value is kept.
 */
import type { StoredSetting } from '$lib/api/types';

export type FieldType = 'string' | 'number' | 'boolean';

export type SettingField = {
	name: string;
	label: string;
	description: string | null;
	required: boolean;
	secret: boolean;
	type: FieldType;
	/** Allowed values (the schema's `enum`). */
	choices: string[] | null;
	/** The schema's default, as text. */
	defaultValue: string | null;
	/** An installed plugin has a value stored for it (secret or not). */
	set: boolean;
	/** What the input starts with: the stored value (never for secrets), else "". */
	initial: string;
	/** Where the value goes (installed plugins): env, header or arg. */
	target: string | null;
};


type JsonSchema = { properties?: Record<string, unknown>; required?: unknown };
type Prop = {
	type?: unknown;
	title?: unknown;
	description?: unknown;
	default?: unknown;
	enum?: unknown;
	writeOnly?: unknown;
	format?: unknown;
	isSecret?: unknown;
};

/** Names the server treats as secret whatever the schema says (see docs/plugins.md). */
const SECRET_NAME = /token|key|secret|password|^authorization$|^proxy-authorization$|^cookie$/i;

export function isSecretName(name: string): boolean {
	return SECRET_NAME.test(name);
}

function isSecretProp(prop: Prop): boolean {
	return prop.writeOnly === true || prop.format === 'password' || prop.isSecret === true;
}

function text(value: unknown): string | null {
	if (value === null || value === undefined) return null;
	if (typeof value === 'string') return value;
	if (typeof value === 'number' || typeof value === 'boolean') return String(value);
	return JSON.stringify(value);
}

function fieldType(prop: Prop): FieldType {
	const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
	if (type === 'number' || type === 'integer') return 'number';
	if (type === 'boolean') return 'boolean';
	return 'string';
}

function requiredNames(schema: JsonSchema | null | undefined): Set<string> {
	const required = schema?.required;
	return new Set(Array.isArray(required) ? required.filter((r): r is string => typeof r === 'string') : []);
}

function fieldFromProp(name: string, raw: unknown, required: boolean): SettingField {
	const prop = (raw && typeof raw === 'object' ? raw : {}) as Prop;
	const choices = Array.isArray(prop.enum) ? prop.enum.map((v) => text(v) ?? '').filter(Boolean) : null;
	const secret = isSecretProp(prop) || isSecretName(name);
	return {
		name,
		label: typeof prop.title === 'string' && prop.title.trim() ? prop.title : name,
		description: typeof prop.description === 'string' && prop.description.trim() ? prop.description : null,
		required,
		secret,
		type: fieldType(prop),
		choices: choices && choices.length ? choices : null,
		defaultValue: secret ? null : text(prop.default),
		set: false,
		initial: '',
		target: null
	};
}

/** Fields for installing: one per property of the schema, required ones first. */
export function fieldsFromSchema(schema: Record<string, unknown> | null | undefined): SettingField[] {
	const s = (schema ?? {}) as JsonSchema;
	const required = requiredNames(s);
	const props = s.properties && typeof s.properties === 'object' ? s.properties : {};
	const fields = Object.entries(props).map(([name, prop]) => fieldFromProp(name, prop, required.has(name)));
	return fields.sort((a, b) => Number(b.required) - Number(a.required));
}

/**
 * Fields for changing an installed plugin's settings: what the API reports (set, secret,
 * non-secret value), completed with the schema's type, choices and default.
 */
export function fieldsFromStored(
	stored: StoredSetting[],
	schema: Record<string, unknown> | null | undefined
): SettingField[] {
	const s = (schema ?? {}) as JsonSchema;
	const props = (s.properties && typeof s.properties === 'object' ? s.properties : {}) as Record<string, unknown>;
	return stored.map((setting) => {
		const base = fieldFromProp(setting.name, props[setting.name], setting.required);
		const secret = setting.secret || base.secret;
		return {
			...base,
			required: setting.required,
			secret,
			description: setting.description ?? base.description,
			defaultValue: secret ? null : base.defaultValue,
			set: setting.set,
			initial: secret ? '' : (setting.value ?? ''),
			target: setting.target
		};
	});
}

/** Starting values of the inputs, by field name. */
export function initialValues(fields: SettingField[]): Record<string, string> {
	return Object.fromEntries(fields.map((f) => [f.name, f.initial]));
}

export type Mode = 'install' | 'update';

/** Problems by field name ("Required", "Must be one of …", "Must be a number"); empty when fine. */
export function validate(fields: SettingField[], values: Record<string, string>, mode: Mode): Record<string, string> {
	const errors: Record<string, string> = {};
	for (const field of fields) {
		const value = (values[field.name] ?? '').trim();
		if (!value) {
			const kept = mode === 'update' && field.secret && field.set;
			if (field.required && field.defaultValue == null && !kept) errors[field.name] = 'Required';
			continue;
		}
		if (field.choices && !field.choices.includes(value)) {
			errors[field.name] = `Must be one of ${field.choices.join(', ')}`;
		} else if (field.type === 'number' && !Number.isFinite(Number(value))) {
			errors[field.name] = 'Must be a number';
		}
	}
	return errors;
}

/**
 * The `settings` object to send.
 * - install: every non-empty value (empty ones fall back to the schema's default on the server).
 * - update: only what changed. An empty secret field is left out (the stored secret is kept);
 *   a non-secret value emptied by the user is sent as "" (cleared).
 */
export function settingsPayload(
	fields: SettingField[],
	values: Record<string, string>,
	mode: Mode
): Record<string, string> {
	const out: Record<string, string> = {};
	for (const field of fields) {
		const raw = values[field.name] ?? '';
		const value = field.secret ? raw : raw.trim();
		if (mode === 'install') {
			if (value.trim()) out[field.name] = value;
			continue;
		}
		if (field.secret) {
			if (value.trim()) out[field.name] = value;
			continue;
		}
		if (value !== field.initial.trim()) out[field.name] = value;
	}
	return out;
}

/** "-y some-server --flag" → ["-y", "some-server", "--flag"]; quotes group words. */
export function splitArgs(line: string): string[] {
	const args: string[] = [];
	const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
	let match: RegExpExecArray | null;
	while ((match = re.exec(line))) args.push(match[1] ?? match[2] ?? match[3]);
	return args;
}

/** The inverse of splitArgs, quoting arguments with spaces. */
export function joinArgs(args: string[]): string {
	return args.map((a) => (a === '' || /\s/.test(a) ? (a.includes('"') ? `'${a}'` : `"${a}"`) : a)).join(' ');
}

/** One environment variable or header in the custom-plugin editor. */
export type Row = {
	name: string;
	value: string;
	secret: boolean;
	/** A stored value (installed plugins): `set` says whether it has one. */
	stored?: boolean;
	set?: boolean;
	/** The stored value when it is not secret. */
	initial?: string;
};

type RowValue = string | { value: string; secret: true } | null;

/**
 * `env` / `headers` to send. Install: every named row. Update: new rows, changed values, and
 * removed stored rows as null; a stored secret left empty is kept (left out).
 */
export function rowsPayload(rows: Row[], mode: Mode, removed: string[] = []): Record<string, RowValue> {
	const out: Record<string, RowValue> = {};
	for (const row of rows) {
		const name = row.name.trim();
		if (!name) continue;
		const secret = row.secret || isSecretName(name);
		if (mode === 'update' && row.stored && secret && !row.value) continue;
		if (mode === 'update' && row.stored && !secret && row.value === (row.initial ?? '')) continue;
		out[name] = row.secret && !isSecretName(name) ? { value: row.value, secret: true } : row.value;
	}
	for (const name of removed) if (!(name in out)) out[name] = null;
	return out;
}
