export { api, ApiError, describeDetail, errorMessage, eventsUrl, knowledgeApi, pluginsApi, runStreamUrl } from './client';
export type * from './types';
export { STATUSES, PRIORITIES, STATUS_TITLES, PRIORITY_TITLES, EVENT_TYPES, PLUGIN_EVENT_TYPES, KNOWLEDGE_EVENT_TYPES, DOCUMENT_KINDS, DOCUMENT_STATUSES, RUN_EVENT_TYPES, ACTIVE_RUN_STATUSES, isActiveRun } from './types';
