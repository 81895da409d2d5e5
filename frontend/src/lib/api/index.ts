export { api, ApiError, describeDetail, eventsUrl, runStreamUrl } from './client';
export type * from './types';
export { STATUSES, PRIORITIES, STATUS_TITLES, PRIORITY_TITLES, EVENT_TYPES, ACTIVE_RUN_STATUSES, isActiveRun } from './types';
