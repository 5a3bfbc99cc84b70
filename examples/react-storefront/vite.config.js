// Vite without plugins: esbuild turns the JSX into React's automatic runtime. `dedupe` keeps one
// React when @flashsale/react comes from a folder of the repository (npm links it).
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic' },
  resolve: { dedupe: ['react', 'react-dom'] },
  server: { host: true, port: 5173 },
});
