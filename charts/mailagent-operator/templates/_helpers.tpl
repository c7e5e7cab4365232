{{/* Labels on every object of the chart. */}}
{{- define "mailagent-operator.labels" -}}
app.kubernetes.io/name: mailagent-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator pods' selector (the Deployment's, which is immutable: never add to it). */}}
{{- define "mailagent-operator.selector" -}}
app.kubernetes.io/name: mailagent-operator
{{- end -}}

{{/* The operator image: repository@digest when a digest is pinned, else repository:tag (default: appVersion). */}}
{{- define "mailagent-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
