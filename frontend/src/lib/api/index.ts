export { api, ApiError, describeDetail, errorMessage, eventsUrl, pluginsApi, runStreamUrl } from './client';
export type * from './types';
export { STATUSES, PRIORITIES, STATUS_TITLES, PRIORITY_TITLES, EVENT_TYPES, PLUGIN_EVENT_TYPES, RUN_EVENT_TYPES, ACTIVE_RUN_STATUSES, isActiveRun } from './types';
