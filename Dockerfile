# Herald container image. Untested on the project's build machines (they have
# no Docker engine); it uses only the project's own files and npm.
#   docker build -t herald .
#   docker run -p 8080:8080 -e HERALD_API_KEYS=change-me-long-key herald
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
# npm run build: the TypeScript and the browser SDK bundle (/client.js); the bundler is a dev dependency.
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
COPY demo ./demo
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
CMD ["node", "packages/server/dist/src/cli/main.js", "serve"]
