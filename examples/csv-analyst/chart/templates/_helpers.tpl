{{/* Object names: the release's name (csv-analyst). */}}
{{- define "csv.fullname" -}}
{{ .Release.Name | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "csv.serviceAccountName" -}}
{{ default (include "csv.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "csv.labels" -}}
app.kubernetes.io/name: csv-analyst-chat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "csv.selector" -}}
app.kubernetes.io/name: csv-analyst-chat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: api
{{- end }}
