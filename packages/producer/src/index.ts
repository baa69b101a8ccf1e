/** The producer's public API: the HTTP server and its parts. */
export { buildServer } from './server.js';
export { Ingest, type IngestKind } from './ingest.js';
export { Metrics, type MetricsOptions } from './metrics.js';
export { findMessage, type MessageView, type DeliveryView } from './message-lookup.js';
export { errorBody, isRedisUnavailable, toErrorReply, type ErrorReply } from './http-errors.js';
export { HEALTH_PING_TIMEOUT_MS } from './routes/health.js';
export type { ApiContext, ServerOptions } from './types.js';
