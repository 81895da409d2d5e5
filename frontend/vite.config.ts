import { sveltekit } from '@sveltejs/kit/vite';
import tailwindcss from '@tailwindcss/vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` proxies /api to the backend; the app itself only ever calls relative /api/... URLs.
const apiTarget = process.env.KANBAN_API_URL ?? 'http://127.0.0.1:8000';

export default defineConfig({
	plugins: [tailwindcss(), sveltekit()],
	build: { sourcemap: Boolean(process.env.KANBAN_SOURCEMAP) },
	server: {
		proxy: {
			'/api': {
				target: apiTarget,
				changeOrigin: false,
				ws: false
			}
		}
	},
	resolve: process.env.VITEST ? { conditions: ['browser'] } : undefined,
	test: {
		environment: 'jsdom',
		include: ['src/**/*.{test,spec}.ts'],
		setupFiles: ['./vitest-setup.ts'],
		expect: { requireAssertions: true }
	}
});
