import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

// `vite build --mode mock` swaps the Tauri API for an in-browser fake so the UI can be looked at and
// screenshotted in a plain browser; the real build never contains it.
export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  base: './',
  clearScreen: false,
  resolve: {
    // Tests mount components: they need Svelte's client runtime, not its server one.
    ...(process.env.VITEST ? { conditions: ['browser'] } : {}),
    ...(mode === 'mock'
      ? {
          alias: {
            '@tauri-apps/api/core': fileURLToPath(new URL('./mock/tauri-core.ts', import.meta.url)),
            '@tauri-apps/api/event': fileURLToPath(new URL('./mock/tauri-event.ts', import.meta.url)),
          },
        }
      : {}),
  },
  build: {
    outDir: mode === 'mock' ? 'dist-mock' : 'dist',
    target: 'es2022',
    // A strict CSP (default-src 'self') forbids inline scripts; keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 600,
  },
  server: { port: 1420, strictPort: true },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
  },
}));
