{{- define "postoffice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base of every resource name. At most 46 characters, so that the longest
name made from it stays a valid DNS label (63): the Redis StatefulSet
"<base>-redis", whose pods carry the label "<base>-redis-<10-character hash>"
(controller-revision-hash), and "<base>-redis-url", "<base>-dashboard".
Release names up to 53 characters (Helm's own limit) therefore always fit;
a test renders such names.
*/}}
{{- define "postoffice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 46 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 46 | trimSuffix "-" }}
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

{{/* An image reference: (dict "image" .Values.image "tag" <default tag>); the digest, when given, pins it. */}}
{{- define "postoffice.imageRef" -}}
{{- $tag := .image.tag | default .tag }}
{{- if .image.digest }}{{ .image.repository }}:{{ $tag }}@{{ .image.digest }}{{ else }}{{ .image.repository }}:{{ $tag }}{{ end }}
{{- end }}

{{- define "postoffice.image" -}}
{{- include "postoffice.imageRef" (dict "image" .Values.image "tag" .Chart.AppVersion) }}
{{- end }}

{{/*
Which Redis Postoffice uses, one of: "bundled" (the default: no other is
chosen and redis.bundled.enabled), "url" (redis.url or redis.existingSecret:
one Redis, or a cluster URL), "sentinel" (redis.sentinel.hosts) or "cluster"
(redis.cluster.nodes). Fails when more than one is chosen, or none.
*/}}
{{- define "postoffice.redisKind" -}}
{{- $r := .Values.redis }}
{{- $chosen := list }}
{{- if or $r.url $r.existingSecret }}{{ $chosen = append $chosen "redis.url / redis.existingSecret" }}{{ end }}
{{- if $r.sentinel.hosts }}{{ $chosen = append $chosen "redis.sentinel.hosts" }}{{ end }}
{{- if $r.cluster.nodes }}{{ $chosen = append $chosen "redis.cluster.nodes" }}{{ end }}
{{- if gt (len $chosen) 1 }}
{{- fail (printf "Redis: choose one of redis.url / redis.existingSecret, redis.sentinel.hosts, redis.cluster.nodes (or none, for the bundled Redis), not both %s. With Sentinel or a cluster, the Redis nodes' password goes in redis.sentinel.url or redis.cluster.url (or their existingSecret)" (join " and " $chosen)) }}
{{- end }}
{{- if not $r.sentinel.hosts }}
{{- range $k := list "url" "existingSecret" "password" "existingPasswordSecret" }}
{{- if index $r.sentinel $k }}{{ fail (printf "redis.sentinel.%s is set but redis.sentinel.hosts is empty: list the sentinels (host:port) to use Sentinel" $k) }}{{ end }}
{{- end }}
{{- end }}
{{- if not $r.cluster.nodes }}
{{- range $k := list "url" "existingSecret" }}
{{- if index $r.cluster $k }}{{ fail (printf "redis.cluster.%s is set but redis.cluster.nodes is empty: list seed nodes (host:port) to use a Redis Cluster" $k) }}{{ end }}
{{- end }}
{{- end }}
{{- if or $r.url $r.existingSecret }}url
{{- else if $r.sentinel.hosts }}sentinel
{{- else if $r.cluster.nodes }}cluster
{{- else if $r.bundled.enabled }}bundled
{{- else }}
{{- fail "Redis: set redis.url, redis.existingSecret, redis.sentinel.hosts, redis.cluster.nodes, or redis.bundled.enabled=true" }}
{{- end }}
{{- end }}

{{/* Whether the bundled Redis is used: enabled, and no other Redis chosen. */}}
{{- define "postoffice.bundledRedis" -}}
{{- if eq (include "postoffice.redisKind" .) "bundled" }}true{{ end }}
{{- end }}

{{/*
The values that give REDIS_URL: redis for "url" and "bundled", redis.sentinel
or redis.cluster (whose URL carries only the scheme, credentials and db).
*/}}
{{- define "postoffice.redisUrlSource" -}}
{{- $kind := include "postoffice.redisKind" . }}
{{- toJson (ternary (index .Values.redis $kind) .Values.redis (has $kind (list "sentinel" "cluster"))) }}
{{- end }}

{{- define "postoffice.redisSecretName" -}}
{{- $src := include "postoffice.redisUrlSource" . | fromJson }}
{{- if $src.existingSecret }}{{ $src.existingSecret }}{{ else }}{{ include "postoffice.fullname" . }}-redis-url{{ end }}
{{- end }}

{{- define "postoffice.redisSecretKey" -}}
{{- $src := include "postoffice.redisUrlSource" . | fromJson }}
{{- if $src.existingSecret }}{{ $src.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{/*
REDIS_MIN_REPLICAS: with Sentinel or a Redis Cluster, that topology's
minReplicas (1 by default: a message is acknowledged once a replica has it);
else config.REDIS_MIN_REPLICAS (0 by default: the bundled Redis has no
replica). A non-zero config.REDIS_MIN_REPLICAS that disagrees with the
topology's is refused rather than silently overridden.
*/}}
{{- define "postoffice.redisMinReplicas" -}}
{{- $kind := include "postoffice.redisKind" . }}
{{- $config := .Values.config.REDIS_MIN_REPLICAS }}
{{- $given := and (not (kindIs "invalid" $config)) (ne (toString $config) "") }}
{{- if has $kind (list "sentinel" "cluster") }}
{{- $n := int64 (index .Values.redis $kind).minReplicas }}
{{- if and $given (ne (int64 $config) 0) (ne (int64 $config) $n) }}
{{- fail (printf "config.REDIS_MIN_REPLICAS (%d) and redis.%s.minReplicas (%d) disagree: with %s, set redis.%s.minReplicas only" (int64 $config) $kind $n (ternary "Sentinel" "a Redis Cluster" (eq $kind "sentinel")) $kind) }}
{{- end }}
{{- $n }}
{{- else if $given }}{{ int64 $config }}
{{- end }}
{{- end }}

{{- define "postoffice.shutdownTimeout" -}}
{{- int64 (default 25 .Values.config.SHUTDOWN_TIMEOUT_SECONDS) }}
{{- end }}

{{/*
How long the producer's preStop hook waits, once it has failed readiness, for
the endpoints to drop the pod: producer.preStop.delaySeconds, or by default
the readiness period times its failure threshold (how long the kubelet takes
to see the pod unready), plus 5 s for the endpoints to reach kube-proxy and
load balancers. 0 without the hook.
*/}}
{{- define "postoffice.preStopDelay" -}}
{{- $p := .Values.producer }}
{{- $d := $p.preStop.delaySeconds }}
{{- if not $p.preStop.enabled }}0
{{- else if and (not (kindIs "invalid" $d)) (ne (toString $d) "") }}{{ int64 $d }}
{{- else }}{{ add (mul (int64 (default 10 $p.readinessProbe.periodSeconds)) (int64 (default 3 $p.readinessProbe.failureThreshold))) 5 }}
{{- end }}
{{- end }}

{{/*
Longer than the drain deadline plus the consumer's 5 s hard-stop margin (and,
for the producer, its preStop wait, which Kubernetes counts in the grace
period): pass (dict "ctx" $ "role" "producer").
*/}}
{{- define "postoffice.terminationGracePeriodSeconds" -}}
{{- $ctx := .ctx }}
{{- $drain := int64 (include "postoffice.shutdownTimeout" $ctx) }}
{{- $preStop := ternary (int64 (include "postoffice.preStopDelay" $ctx)) 0 (eq .role "producer") }}
{{- $least := add $drain 5 $preStop }}
{{- if $ctx.Values.terminationGracePeriodSeconds }}
{{- $grace := int64 $ctx.Values.terminationGracePeriodSeconds }}
{{- if le $grace $least }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be more than SHUTDOWN_TIMEOUT_SECONDS + 5%s (%d)" $grace (ternary " + the producer's preStop delay" "" (gt $preStop 0)) $least) }}
{{- end }}
{{- $grace }}
{{- else }}
{{- add $drain 15 $preStop }}
{{- end }}
{{- end }}

{{/*
Settings read only by one process; every other key of .Values.config goes to both.
Keep in step with SETTINGS in packages/shared/src/config.ts (a test checks it).
*/}}
{{- define "postoffice.producerOnly" -}}
MAX_BULK_MESSAGES BODY_LIMIT_BYTES SEARCH_SCAN_BUDGET ANSWER_BYTE_BUDGET REQUEST_TIMEOUT_MS HEADERS_TIMEOUT_MS CONNECTION_TIMEOUT_MS KEEP_ALIVE_TIMEOUT_MS MAX_CONNECTIONS LOGIN_MAX_FAILURES LOGIN_WINDOW_SECONDS TRUST_PROXY STATS_CACHE_MS
{{- end }}
{{- define "postoffice.consumerOnly" -}}
HEARTBEAT_SECONDS RETRY_MAX_BACKOFF_SECONDS BREAKER_THRESHOLD RETRY_POLL_MS TRIM_INTERVAL_SECONDS RECOVERY_INTERVAL_SECONDS RECOVERY_TIMEOUT_SECONDS AUDIT_LOG AUDIT_STREAM AUDIT_STREAM_MAXLEN
{{- end }}

{{/* The environment of one process: pass (dict "ctx" $ "role" "producer"). */}}
{{- define "postoffice.env" -}}
{{- $ctx := .ctx }}
{{- $skip := splitList " " (include (ternary "postoffice.consumerOnly" "postoffice.producerOnly" (eq .role "producer")) $ctx) -}}
{{- $redis := $ctx.Values.redis }}
{{- $kind := include "postoffice.redisKind" $ctx }}
{{- $skip = append $skip "REDIS_MIN_REPLICAS" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "postoffice.redisSecretName" $ctx }}
      key: {{ include "postoffice.redisSecretKey" $ctx }}
{{- if eq $kind "sentinel" }}
- name: REDIS_SENTINELS
  value: {{ join "," $redis.sentinel.hosts | quote }}
- name: REDIS_SENTINEL_NAME
  value: {{ $redis.sentinel.name | quote }}
{{- if or $redis.sentinel.password $redis.sentinel.existingPasswordSecret }}
- name: REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "postoffice.sentinelPasswordSecretName" $ctx }}
      key: {{ include "postoffice.sentinelPasswordSecretKey" $ctx }}
{{- end }}
{{- else if eq $kind "cluster" }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," $redis.cluster.nodes | quote }}
{{- end }}
{{- with include "postoffice.redisMinReplicas" $ctx }}
- name: REDIS_MIN_REPLICAS
  value: {{ . | quote }}
{{- end }}
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

{{- define "postoffice.sentinelPasswordSecretName" -}}
{{- default (printf "%s-redis-url" (include "postoffice.fullname" .)) .Values.redis.sentinel.existingPasswordSecret }}
{{- end }}

{{- define "postoffice.sentinelPasswordSecretKey" -}}
{{- ternary .Values.redis.sentinel.existingPasswordSecretKey "sentinel-password" (ne .Values.redis.sentinel.existingPasswordSecret "") }}
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

{{/*
Bytes in a Kubernetes memory quantity (512Mi, 1Gi, 500M, 1073741824).
*/}}
{{- define "postoffice.bytes" -}}
{{- $q := toString . }}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- $number := regexFind "^[0-9]+" $q }}
{{- $unit := trimPrefix $number $q }}
{{- if or (eq $number "") (and (ne $unit "") (not (hasKey $units $unit))) }}
{{- fail (printf "redis.bundled.resources.limits.memory: %q is not a memory quantity this chart reads (e.g. 512Mi, 1Gi)" $q) }}
{{- end }}
{{- mul (int64 $number) (int64 (get $units $unit | default 1)) }}
{{- end }}

{{/* The bundled Redis's maxmemory: redis.bundled.maxmemory, or 80% of its memory limit. */}}
{{- define "postoffice.redisMaxmemory" -}}
{{- $r := .Values.redis.bundled }}
{{- if $r.maxmemory }}{{ $r.maxmemory }}
{{- else }}
{{- $limit := dig "limits" "memory" "" $r.resources }}
{{- if not $limit }}
{{- fail "redis.bundled: set resources.limits.memory (maxmemory is 80% of it) or maxmemory" }}
{{- end }}
{{- div (mul (int64 (include "postoffice.bytes" $limit)) 8) 10 }}
{{- end }}
{{- end }}

{{/*
Checksums of what goes into the Secrets a pod reads, from values only: a
changed Redis URL, token list or Pub/Sub key restarts the pods that use it,
and nothing else does. Generated values (the API token, the bundled Redis
password) are kept across upgrades, so they are left out: a checksum of
them would change at every `helm template` (GitOps tools would restart the
pods at every sync). Existing Secrets are not read: restart the pods when
you change one. Pass (dict "ctx" $ "role" "producer").
*/}}
{{- define "postoffice.secretsChecksum" -}}
{{- $v := .ctx.Values }}
{{- $s := $v.redis.sentinel }}
{{- $inputs := dict "redisUrl" $v.redis.url "redisSecret" $v.redis.existingSecret }}
{{- $_ := set $inputs "sentinel" (dict "url" $s.url "secret" $s.existingSecret "password" $s.password "passwordSecret" $s.existingPasswordSecret) }}
{{- $_ := set $inputs "cluster" (dict "url" $v.redis.cluster.url "secret" $v.redis.cluster.existingSecret) }}
{{- if eq .role "producer" }}
{{- $_ := set $inputs "auth" (dict "enabled" $v.auth.enabled "tokens" $v.auth.tokens "secret" $v.auth.existingSecret) }}
{{- else if $v.pubsub.enabled }}
{{- $_ := set $inputs "pubsub" (dict "json" $v.pubsub.credentials.json "secret" $v.pubsub.credentials.existingSecret) }}
{{- end }}
{{- toJson $inputs | sha256sum }}
{{- end }}

{{/*
Values the chart refuses, each with a clear error (rendered once, from NOTES-free
templates: included by the producer Deployment).
*/}}
{{- define "postoffice.guards" -}}
{{- $v := .Values }}
{{- $retention := int64 (default 604800 $v.config.RETENTION_SECONDS) }}
{{- $maxAge := int64 (default 259200 $v.config.RETRY_MAX_AGE_SECONDS) }}
{{- if lt $retention $maxAge }}
{{- fail (printf "config.RETENTION_SECONDS (%d) must be at least config.RETRY_MAX_AGE_SECONDS (%d): messages would be trimmed before they are given up on" $retention $maxAge) }}
{{- end }}
{{- $a := $v.consumer.autoscaling }}
{{- if and $a.enabled (gt (int64 $a.minReplicas) (int64 $a.maxReplicas)) }}
{{- fail (printf "consumer.autoscaling.minReplicas (%d) must not be more than maxReplicas (%d)" (int64 $a.minReplicas) (int64 $a.maxReplicas)) }}
{{- end }}
{{- $k := $v.consumer.keda }}
{{- if and $k.enabled (gt (int64 $k.minReplicaCount) (int64 $k.maxReplicaCount)) }}
{{- fail (printf "consumer.keda.minReplicaCount (%d) must not be more than maxReplicaCount (%d)" (int64 $k.minReplicaCount) (int64 $k.maxReplicaCount)) }}
{{- end }}
{{- if and $k.enabled $a.enabled }}
{{- fail "consumer.keda.enabled and consumer.autoscaling.enabled: choose one (KEDA makes its own HorizontalPodAutoscaler)" }}
{{- end }}
{{- include "postoffice.pdbGuard" (dict "component" "producer" "pdb" $v.producer.pdb "replicas" (int64 $v.producer.replicas)) }}
{{- $consumers := int64 $v.consumer.replicas }}
{{- if $a.enabled }}{{ $consumers = int64 $a.minReplicas }}{{ end }}
{{- if $k.enabled }}{{ $consumers = int64 $k.minReplicaCount }}{{ end }}
{{- include "postoffice.pdbGuard" (dict "component" "consumer" "pdb" $v.consumer.pdb "replicas" $consumers) }}
{{- end }}

{{/*
A PodDisruptionBudget that lets no pod go blocks every node drain (kubectl
drain waits for ever): refuse one that needs as many pods available as there
are (with 1 replica, minAvailable 1), or allows none unavailable.
*/}}
{{- define "postoffice.pdbGuard" -}}
{{- $pdb := .pdb }}
{{- if $pdb.enabled }}
{{- $why := "" }}
{{- if not (kindIs "invalid" $pdb.minAvailable) }}
{{- $min := toString $pdb.minAvailable }}
{{- if hasSuffix "%" $min }}
{{- if and (ne $min "0%") (eq (int64 .replicas) 1) }}{{ $why = printf "minAvailable %s of 1 replica is that replica" $min }}{{ end }}
{{- if eq $min "100%" }}{{ $why = "minAvailable 100%" }}{{ end }}
{{- else if ge (int64 $min) (int64 .replicas) }}
{{- $why = printf "minAvailable %s with %d replica(s)" $min (int64 .replicas) }}
{{- end }}
{{- end }}
{{- if not (kindIs "invalid" $pdb.maxUnavailable) }}
{{- $max := toString $pdb.maxUnavailable }}
{{- if or (eq $max "0") (eq $max "0%") }}{{ $why = printf "maxUnavailable %s" $max }}{{ end }}
{{- end }}
{{- if $why }}
{{- fail (printf "%s.pdb: %s lets no pod be evicted, so it blocks every node drain: raise %s.replicas, lower the budget, or set %s.pdb.enabled=false" .component $why .component .component) }}
{{- end }}
{{- end }}
{{- end }}
