{{/*
The chart name, or nameOverride.
*/}}
{{- define "federator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fullname of the objects: fullnameOverride, else <release>-<name> (the release name alone
when it already contains the name), cut to 63 characters.
*/}}
{{- define "federator.fullname" -}}
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

{{/*
chart-version, for the helm.sh/chart label.
*/}}
{{- define "federator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The component label: controller or remote.
*/}}
{{- define "federator.component" -}}
{{- .Values.mode }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "federator.labels" -}}
helm.sh/chart: {{ include "federator.chart" . }}
{{ include "federator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ include "federator.component" . }}
app.kubernetes.io/part-of: federator
{{- end }}

{{/*
Labels that select the controller's pods.
*/}}
{{- define "federator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "federator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The controller's service account.
*/}}
{{- define "federator.serviceAccountName" -}}
{{- default (include "federator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "federator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
A duration of the schema's form (500ms, 10s, 5m, 1h) in milliseconds, to compare timings.
*/}}
{{- define "federator.millis" -}}
{{- $d := toString . }}
{{- $n := regexFind "^[0-9]+" $d | atoi }}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $d) $d }}
{{- if eq $unit "ms" }}{{ $n }}
{{- else if eq $unit "s" }}{{ mul $n 1000 }}
{{- else if eq $unit "m" }}{{ mul $n 60000 }}
{{- else if eq $unit "h" }}{{ mul $n 3600000 }}
{{- else }}{{ fail (printf "%q is not a duration (500ms, 10s, 5m, 1h)" $d) }}
{{- end }}
{{- end }}

{{/*
Combinations of values federator cannot run with; each failure names the values to change.
The schema checks each value alone.
*/}}
{{- define "federator.validate" -}}
{{- $v := .Values }}
{{- if eq $v.mode "remote" }}
{{- if ne .Release.Namespace $v.federation.syncNamespace }}
{{- fail (printf "mode=remote installs into the sync namespace federation.syncNamespace=%q, not %q: install with `-n %s --create-namespace` (or set federation.syncNamespace to the sync namespace your federator writes to)" $v.federation.syncNamespace .Release.Namespace $v.federation.syncNamespace) }}
{{- end }}
{{- else }}
{{- if and (gt (int $v.replicas) 1) (not $v.leaderElection.enabled) }}
{{- fail (printf "replicas=%d needs leaderElection.enabled=true: replicas without an election would all write; set replicas=1 or leaderElection.enabled=true" (int $v.replicas)) }}
{{- end }}
{{- if and $v.leaderElection.shard (ne $v.store.type "etcd") }}
{{- fail "leaderElection.shard=true needs store.type=etcd: the replicas share the clusters through etcd" }}
{{- end }}
{{- if and (eq $v.store.type "etcd") (empty $v.store.etcd.endpoints) }}
{{- fail "store.type=etcd needs store.etcd.endpoints (a list of HOST:PORT of the etcd members)" }}
{{- end }}
{{- if and (ne $v.store.type "etcd") (or $v.store.etcd.endpoints $v.store.etcd.tls.secretName $v.store.etcd.prefix) }}
{{- fail (printf "store.etcd.* is set but store.type=%q: set store.type=etcd to use etcd" $v.store.type) }}
{{- end }}
{{- if $v.leaderElection.enabled }}
{{- $lease := include "federator.millis" $v.leaderElection.leaseDuration | atoi }}
{{- $renew := include "federator.millis" $v.leaderElection.renewDeadline | atoi }}
{{- $retry := include "federator.millis" $v.leaderElection.retryPeriod | atoi }}
{{- if not (lt $renew $lease) }}
{{- fail (printf "leaderElection.renewDeadline (%s) must be shorter than leaderElection.leaseDuration (%s)" $v.leaderElection.renewDeadline $v.leaderElection.leaseDuration) }}
{{- end }}
{{- if not (lt $retry $renew) }}
{{- fail (printf "leaderElection.retryPeriod (%s) must be shorter than leaderElection.renewDeadline (%s)" $v.leaderElection.retryPeriod $v.leaderElection.renewDeadline) }}
{{- end }}
{{- end }}
{{- if and $v.api.tls.secretName (not $v.api.enabled) }}
{{- fail "api.tls.secretName is set but api.enabled=false: set api.enabled=true to serve the gRPC API" }}
{{- end }}
{{- if and $v.dns.service.clusterIP (not $v.dns.enabled) }}
{{- fail "dns.service.clusterIP is set but dns.enabled=false: there is no DNS Service" }}
{{- end }}
{{- end }}
{{- end }}
