/** One line that says what a tool call does: the command, the file, the pattern… */
export function toolSummary(name: string, input: Record<string, unknown> | null | undefined): string {
	if (!input) return '';
	const pick = (...keys: string[]) => {
		for (const key of keys) {
			const value = input[key];
			if (typeof value === 'string' && value.trim()) return value;
		}
		return '';
	};
	let text = '';
	if (name === 'Bash') text = pick('command');
	else if (['Write', 'Edit', 'MultiEdit', 'Read', 'NotebookEdit'].includes(name)) text = pick('file_path', 'notebook_path', 'path');
	else if (name === 'Grep' || name === 'Glob') text = pick('pattern', 'query');
	else if (name === 'WebFetch') text = pick('url');
	else if (name === 'WebSearch') text = pick('query');
	else if (name === 'TodoWrite') text = Array.isArray(input.todos) ? `${input.todos.length} items` : '';
	if (!text) {
		for (const value of Object.values(input)) {
			if (typeof value === 'string' && value.trim()) {
				text = value;
				break;
			}
		}
	}
	const line = text.split('\n')[0];
	return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}

/** A tool's input as readable text: a shell command as it is, anything else as indented JSON (clipped). */
export function toolInputText(name: string, input: Record<string, unknown> | null | undefined, max = 20_000): string {
	if (!input) return '';
	let text: string;
	if (name === 'Bash' && typeof input.command === 'string' && Object.keys(input).every((k) => k === 'command' || k === 'description' || k === 'timeout')) {
		text = input.command;
	} else {
		try {
			text = JSON.stringify(input, null, 2);
		} catch {
			text = String(input);
		}
	}
	return text.length > max ? `${text.slice(0, max)}\n… (${text.length - max} more characters)` : text;
}
