import { defineConfig } from "vite";

// The bundle in dist/ is committed and embedded into the Rust binary (see ../README.md).
export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // Small and self-contained: one JS file, one CSS file.
    modulePreload: false,
  },
  server: {
    // `npm run dev` proxies the API and websocket to a running server (STILT_WEB_URL).
    proxy: {
      "/api": process.env.STILT_WEB_URL ?? "http://127.0.0.1:10350",
      "/ws": { target: (process.env.STILT_WEB_URL ?? "http://127.0.0.1:10350").replace("http", "ws"), ws: true },
    },
  },
});
