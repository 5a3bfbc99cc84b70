// Vite without plugins: esbuild turns the JSX into React's automatic runtime.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic' },
  server: { host: true, port: 5173 },
});
