/** Every keyboard shortcut of the board, as the shortcuts dialog (`?`) lists them. */
export type Shortcut = {
	/** One or more alternatives, each written for `formatShortcut` (`mod+k`, `j`, `down`). */
	keys: string[];
	description: string;
};

export type ShortcutGroup = { title: string; shortcuts: Shortcut[] };

export const SHORTCUTS: ShortcutGroup[] = [
	{
		title: 'Everywhere',
		shortcuts: [
			{ keys: ['mod+k'], description: 'Command palette: open a task, switch project, run commands' },
			{ keys: ['?'], description: 'Show these shortcuts' },
			{ keys: ['esc'], description: 'Close the dialog or the task panel' }
		]
	},
	{
		title: 'Board',
		shortcuts: [
			{ keys: ['n'], description: 'New task' },
			{ keys: ['/'], description: 'Search tasks' },
			{ keys: ['j', 'down'], description: 'Next card in the column' },
			{ keys: ['k', 'up'], description: 'Previous card in the column' },
			{ keys: ['h', 'left'], description: 'Card in the column to the left' },
			{ keys: ['l', 'right'], description: 'Card in the column to the right' },
			{ keys: ['enter'], description: 'Open the focused card' },
			{ keys: ['space'], description: 'Pick the focused card up or drop it (arrows and Tab move it)' }
		]
	},
	{
		title: 'Dialogs',
		shortcuts: [
			{ keys: ['mod+enter'], description: 'Save the task, send the requested changes' },
			{ keys: ['tab'], description: 'Next field' }
		]
	}
];
