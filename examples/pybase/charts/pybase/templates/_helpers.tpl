{{/* Labels every object of the release carries; `component` names the part. */}}
{{- define "pybase.labels" -}}
app.kubernetes.io/name: pybase
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: pybase
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "pybase.selector" -}}
app.kubernetes.io/name: pybase
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The labels the database's and Redis' NetworkPolicies admit. */}}
{{- define "pybase.dataClient" -}}
pybase.dev/database-client: "true"
pybase.dev/redis-client: "true"
{{- end }}

{{- define "pybase.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end }}

{{/* Pods run as a non-root numeric user that Kubernetes can verify. */}}
{{- define "pybase.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "pybase.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "pybase.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secretName }}
      key: {{ .key }}
{{- end }}

{{/* What the API and the workers need to reach the data. */}}
{{- define "pybase.dataEnv" -}}
- name: DATABASE_URL
  value: {{ .Values.database.url | quote }}
{{ include "pybase.secretEnv" (dict "root" . "name" "DATABASE_PASSWORD" "key" .Values.secretKeys.databasePassword) }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{ include "pybase.secretEnv" (dict "root" . "name" "REDIS_PASSWORD" "key" .Values.secretKeys.redisPassword) }}
{{- end }}
