// A client-only single-page app: the backend serves build/index.html for every route.
export const ssr = false;
export const prerender = false;
