{{- define "postoffice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postoffice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "postoffice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "postoffice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "producer"). */}}
{{- define "postoffice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postoffice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "postoffice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "postoffice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "postoffice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Whether the bundled Redis is used: enabled, and no external Redis given. */}}
{{- define "postoffice.bundledRedis" -}}
{{- if and .Values.redis.bundled.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) }}true{{ end }}
{{- end }}

{{- define "postoffice.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}{{ else }}{{ include "postoffice.fullname" . }}-redis-url{{ end }}
{{- end }}

{{- define "postoffice.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{- define "postoffice.shutdownTimeout" -}}
{{- int64 (default 25 .Values.config.SHUTDOWN_TIMEOUT_SECONDS) }}
{{- end }}

{{/* Longer than the drain deadline plus the consumer's 5 s hard-stop margin. */}}
{{- define "postoffice.terminationGracePeriodSeconds" -}}
{{- $drain := int64 (include "postoffice.shutdownTimeout" .) }}
{{- if .Values.terminationGracePeriodSeconds }}
{{- $grace := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $grace (add $drain 5) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be more than SHUTDOWN_TIMEOUT_SECONDS + 5 (%d)" $grace (add $drain 5)) }}
{{- end }}
{{- $grace }}
{{- else }}
{{- add $drain 15 }}
{{- end }}
{{- end }}

{{/*
Settings read only by one process; every other key of .Values.config goes to both.
Keep in step with SETTINGS in packages/shared/src/config.ts (a test checks it).
*/}}
{{- define "postoffice.producerOnly" -}}
MAX_BULK_MESSAGES BODY_LIMIT_BYTES REDIS_MIN_REPLICAS REDIS_WAIT_TIMEOUT_MS SEARCH_SCAN_BUDGET REQUEST_TIMEOUT_MS HEADERS_TIMEOUT_MS CONNECTION_TIMEOUT_MS KEEP_ALIVE_TIMEOUT_MS MAX_CONNECTIONS LOGIN_MAX_FAILURES LOGIN_WINDOW_SECONDS TRUST_PROXY STATS_CACHE_MS
{{- end }}
{{- define "postoffice.consumerOnly" -}}
HEARTBEAT_SECONDS RETRY_MAX_BACKOFF_SECONDS BREAKER_THRESHOLD RETRY_POLL_MS TRIM_INTERVAL_SECONDS AUDIT_LOG AUDIT_STREAM AUDIT_STREAM_MAXLEN
{{- end }}

{{/* The environment of one process: pass (dict "ctx" $ "role" "producer"). */}}
{{- define "postoffice.env" -}}
{{- $ctx := .ctx }}
{{- $skip := splitList " " (include (ternary "postoffice.consumerOnly" "postoffice.producerOnly" (eq .role "producer")) $ctx) -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "postoffice.redisSecretName" $ctx }}
      key: {{ include "postoffice.redisSecretKey" $ctx }}
- name: HOST
  value: 0.0.0.0
- name: PORT
  value: {{ (index $ctx.Values .role).port | int64 | quote }}
{{- if eq .role "consumer" }}
- name: NODE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- range $name, $value := $ctx.Values.config }}
{{- if and (not (has $name $skip)) (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
- name: {{ $name }}
  value: {{ if kindIs "float64" $value }}{{ int64 $value | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end }}
{{- end }}
{{- if and (eq .role "producer") $ctx.Values.auth.enabled }}
- name: API_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-auth" (include "postoffice.fullname" $ctx)) $ctx.Values.auth.existingSecret }}
      key: {{ ternary $ctx.Values.auth.existingSecretKey "api-tokens" (ne $ctx.Values.auth.existingSecret "") }}
{{- end }}
{{- if and (eq .role "consumer") $ctx.Values.pubsub.enabled }}
{{- with $ctx.Values.pubsub.projectId }}
- name: GCLOUD_PUBSUB_PROJECT_ID
  value: {{ . | quote }}
{{- end }}
{{- with $ctx.Values.pubsub.emulatorHost }}
- name: PUBSUB_EMULATOR_HOST
  value: {{ . | quote }}
{{- end }}
{{- if or $ctx.Values.pubsub.credentials.json $ctx.Values.pubsub.credentials.existingSecret }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: /var/run/secrets/postoffice/pubsub/{{ include "postoffice.pubsubKey" $ctx }}
{{- end }}
{{- end }}
{{- with (index $ctx.Values .role).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "postoffice.pubsubSecretName" -}}
{{- default (printf "%s-pubsub" (include "postoffice.fullname" .)) .Values.pubsub.credentials.existingSecret }}
{{- end }}

{{- define "postoffice.pubsubKey" -}}
{{- ternary .Values.pubsub.credentials.existingSecretKey "key.json" (ne .Values.pubsub.credentials.existingSecret "") }}
{{- end }}

{{/* The container command: the same entrypoints as outside Kubernetes. */}}
{{- define "postoffice.command" -}}
- node
- packages/{{ . }}/dist/main.js
{{- end }}
