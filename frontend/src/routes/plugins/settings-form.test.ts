import { describe, expect, it } from 'vitest';
import {
	fieldsFromSchema,
	fieldsFromStored,
	initialValues,
	isSecretName,
	joinArgs,
	rowsPayload,
	settingsPayload,
	splitArgs,
	validate
} from './settings-form';

const schema = {
	type: 'object',
	properties: {
		UNITS: { type: 'string', default: 'metric', enum: ['metric', 'imperial'], description: 'Unit system' },
		WEATHER_API_KEY: { type: 'string', writeOnly: true, description: 'Your API key' },
		DB_URL: { type: 'string', format: 'password' },
		REGION: { type: 'string' },
		RETRIES: { type: 'integer', title: 'Retries' },
		GITHUB_TOKEN: { type: 'string' }
	},
	required: ['WEATHER_API_KEY', 'REGION']
};

describe('fieldsFromSchema', () => {
	it('makes one field per property, required first, with descriptions, choices and defaults', () => {
		const fields = fieldsFromSchema(schema);
		expect(fields.map((f) => f.name)).toEqual(['WEATHER_API_KEY', 'REGION', 'UNITS', 'DB_URL', 'RETRIES', 'GITHUB_TOKEN']);
		const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
		expect(byName.WEATHER_API_KEY).toMatchObject({ required: true, secret: true, description: 'Your API key' });
		expect(byName.REGION).toMatchObject({ required: true, secret: false, type: 'string' });
		expect(byName.UNITS).toMatchObject({ required: false, choices: ['metric', 'imperial'], defaultValue: 'metric' });
		expect(byName.RETRIES).toMatchObject({ type: 'number', label: 'Retries' });
	});

	it('marks secrets from writeOnly, format password, isSecret and secret-looking names', () => {
		const byName = Object.fromEntries(
			fieldsFromSchema({ ...schema, properties: { ...schema.properties, X: { isSecret: true } } }).map((f) => [f.name, f.secret])
		);
		expect(byName).toMatchObject({ WEATHER_API_KEY: true, DB_URL: true, GITHUB_TOKEN: true, X: true, REGION: false, UNITS: false });
		expect(isSecretName('Authorization')).toBe(true);
		expect(isSecretName('X-Api-Key')).toBe(true);
		expect(isSecretName('HOST')).toBe(false);
	});

	it('copes with an empty or odd schema', () => {
		expect(fieldsFromSchema(null)).toEqual([]);
		expect(fieldsFromSchema({ properties: { A: null }, required: 'A' })).toMatchObject([{ name: 'A', required: false }]);
	});
});

describe('validate', () => {
	const fields = fieldsFromSchema(schema);

	it('requires required values without a default', () => {
		expect(validate(fields, {}, 'install')).toEqual({ WEATHER_API_KEY: 'Required', REGION: 'Required' });
		expect(validate(fields, { WEATHER_API_KEY: 'k', REGION: '  ' }, 'install')).toEqual({ REGION: 'Required' });
	});

	it('checks choices and numbers', () => {
		const errors = validate(fields, { WEATHER_API_KEY: 'k', REGION: 'eu', UNITS: 'kelvin', RETRIES: 'three' }, 'install');
		expect(errors).toEqual({ UNITS: 'Must be one of metric, imperial', RETRIES: 'Must be a number' });
	});

	it('accepts an empty secret in an update when one is stored', () => {
		const stored = fieldsFromStored(
			[
				{ name: 'WEATHER_API_KEY', set: true, secret: true, value: null, required: true, target: 'env' },
				{ name: 'REGION', set: true, secret: false, value: 'eu', required: true, target: 'env' }
			],
			schema
		);
		expect(validate(stored, initialValues(stored), 'update')).toEqual({});
		expect(validate(stored, { ...initialValues(stored), REGION: '' }, 'update')).toEqual({ REGION: 'Required' });
	});
});

describe('settingsPayload', () => {
	it('install: sends what was filled in, nothing empty', () => {
		const fields = fieldsFromSchema(schema);
		const payload = settingsPayload(fields, { WEATHER_API_KEY: ' s3cret ', REGION: ' eu ', UNITS: '' }, 'install');
		expect(payload).toEqual({ WEATHER_API_KEY: ' s3cret ', REGION: 'eu' });
	});

	it('update: leaves untouched secrets out, sends changed values, clears emptied ones', () => {
		const fields = fieldsFromStored(
			[
				{ name: 'WEATHER_API_KEY', set: true, secret: true, value: null, required: true, target: 'env' },
				{ name: 'DB_URL', set: false, secret: true, value: null, required: false, target: 'env' },
				{ name: 'REGION', set: true, secret: false, value: 'eu', required: true, target: 'arg' },
				{ name: 'UNITS', set: true, secret: false, value: 'metric', required: false, target: 'env' },
				{ name: 'HOST', set: true, secret: false, value: 'a', required: false, target: 'env' }
			],
			schema
		);
		const start = initialValues(fields);
		expect(start).toEqual({ WEATHER_API_KEY: '', DB_URL: '', REGION: 'eu', UNITS: 'metric', HOST: 'a' });
		expect(settingsPayload(fields, start, 'update')).toEqual({});
		const payload = settingsPayload(fields, { ...start, DB_URL: 'postgres://x', UNITS: 'imperial', HOST: '' }, 'update');
		expect(payload).toEqual({ DB_URL: 'postgres://x', UNITS: 'imperial', HOST: '' });
		expect(payload).not.toHaveProperty('WEATHER_API_KEY');
	});

	it('update: a secret the API marks secret stays secret even when the schema does not say so', () => {
		const [field] = fieldsFromStored([{ name: 'DSN', set: true, secret: true, value: null, required: false, target: 'env' }], {});
		expect(field).toMatchObject({ secret: true, initial: '', set: true });
	});
});

describe('args', () => {
	it('splits and joins a command line', () => {
		expect(splitArgs('-y "my server" --flag \'a b\'')).toEqual(['-y', 'my server', '--flag', 'a b']);
		expect(splitArgs(joinArgs(['-y', 'my server', 'x']))).toEqual(['-y', 'my server', 'x']);
		expect(splitArgs('   ')).toEqual([]);
	});
});

describe('rowsPayload', () => {
	it('install: named rows, secrets marked when the name does not say so', () => {
		const rows = [
			{ name: 'DB_URL', value: 'postgres://u:p@h/db', secret: true },
			{ name: 'API_KEY', value: 'k', secret: false },
			{ name: 'HOST', value: 'h', secret: false },
			{ name: ' ', value: 'ignored', secret: false }
		];
		expect(rowsPayload(rows, 'install')).toEqual({
			DB_URL: { value: 'postgres://u:p@h/db', secret: true },
			API_KEY: 'k',
			HOST: 'h'
		});
	});

	it('update: keeps stored secrets left empty, sends changes and removals', () => {
		const rows = [
			{ name: 'API_KEY', value: '', secret: true, stored: true, set: true },
			{ name: 'HOST', value: 'h', initial: 'h', secret: false, stored: true, set: true },
			{ name: 'PORT', value: '81', initial: '80', secret: false, stored: true, set: true },
			{ name: 'NEW', value: 'n', secret: false }
		];
		expect(rowsPayload(rows, 'update', ['OLD'])).toEqual({ PORT: '81', NEW: 'n', OLD: null });
	});
});
