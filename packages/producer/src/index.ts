/** The producer's public API: the HTTP server and its parts. */
export { buildServer, OPEN_BODY_LIMIT_BYTES } from './server.js';
export { LoginThrottle, clientOf } from './login-throttle.js';
export { Ingest, IDEMPOTENCY_TTL_SECONDS, type IngestKind, type OnceResult } from './ingest.js';
export { Failing, type FailingItem, type FailingPage, type FailingAction, type Selection } from './failing.js';
export { Search, type SearchFilters, type SearchItem, type SearchPage } from './search.js';
export { scheduleMessage, parseIsoWithOffset, SCHEDULE_PAST_TOLERANCE_MS } from './schedule.js';
export { Metrics, type MetricsOptions } from './metrics.js';
export { findMessage, type MessageView, type DeliveryView } from '@postoffice/shared';
export { errorBody, isRedisUnavailable, toErrorReply, type ErrorReply } from './http-errors.js';
export { Auth, SESSION_COOKIE, SESSION_LIFETIME_SECONDS, isPublic, readCookie, type Verdict } from './auth.js';
export { HEALTH_PING_TIMEOUT_MS } from './routes/health.js';
export { openApiDocument, registeredRoutes, type RouteInfo } from './openapi.js';
export { inexactNumber, keepsExactly } from './exact-numbers.js';
export type * from './types.js';
