import Root from './command.svelte';
import Input from './command-input.svelte';
import List from './command-list.svelte';
import Group from './command-group.svelte';
import Item from './command-item.svelte';
import Empty from './command-empty.svelte';

export {
	Root,
	Input,
	List,
	Group,
	Item,
	Empty,
	//
	Root as Command,
	Input as CommandInput,
	List as CommandList,
	Group as CommandGroup,
	Item as CommandItem,
	Empty as CommandEmpty
};
