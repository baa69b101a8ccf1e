# syntax=docker/dockerfile:1
# One image for both processes; the chart picks the entrypoint:
#   node packages/producer/dist/main.js   (the API, port 4000)
#   node packages/consumer/dist/main.js   (a delivery node, port 4001)
# A test (helm/postoffice/test/dockerfile.test.ts) checks that every path
# copied and run here exists after `pnpm build`, and runs the deploy steps.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
RUN npm install --global pnpm@10.34.9
# Manifests first, so the dependency layer is cached until they change.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc tsconfig.base.json turbo.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/producer/package.json packages/producer/
COPY packages/consumer/package.json packages/consumer/
COPY helm/postoffice/package.json helm/postoffice/
RUN pnpm install --frozen-lockfile --filter "@postoffice/producer..." --filter "@postoffice/consumer..." --filter postoffice
COPY packages/shared/ packages/shared/
COPY packages/producer/ packages/producer/
COPY packages/consumer/ packages/consumer/
RUN pnpm build
# Each process with its production dependencies only, at the same path as in the repository.
RUN pnpm --filter @postoffice/producer deploy --prod --legacy /out/packages/producer
RUN pnpm --filter @postoffice/consumer deploy --prod --legacy /out/packages/consumer

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the app: the chart runs it with a read-only root filesystem.
COPY --from=build /out/ /app/
USER 10001:10001
EXPOSE 4000 4001
CMD ["node", "packages/producer/dist/main.js"]
