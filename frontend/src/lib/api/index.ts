export { api, ApiError, describeDetail, eventsUrl } from './client';
export type * from './types';
export { STATUSES, PRIORITIES, STATUS_TITLES, PRIORITY_TITLES, EVENT_TYPES } from './types';
