import { defineConfig } from "vite";

// Preact through esbuild's automatic JSX runtime: no framework plugin needed. During
// `npm run dev` the API, /sync, /events and /files go to a server on :8080.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  // The entry chunk carries automerge's WebAssembly as base64 (about 4.5 MB, 1.6 MB gzipped).
  build: { target: "es2022", outDir: "dist", assetsInlineLimit: 0, chunkSizeWarningLimit: 6000 },
  server: {
    proxy: {
      "/api": "http://127.0.0.1:8080",
      "/files": "http://127.0.0.1:8080",
      "/sync": { target: "ws://127.0.0.1:8080", ws: true },
      "/events": { target: "ws://127.0.0.1:8080", ws: true },
    },
  },
});
