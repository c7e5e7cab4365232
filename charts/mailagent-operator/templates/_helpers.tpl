{{/* Labels on every object of the chart. */}}
{{- define "mailagent-operator.labels" -}}
app.kubernetes.io/name: mailagent-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator pods' selector (the unsharded Deployment's, which is immutable: never add to
it; a shard's Deployment, a new object, adds its shard label). Every shard's pods match it too, so
the metrics Service, the ServiceMonitor and the NetworkPolicy, which select with it, cover all
shards. */}}
{{- define "mailagent-operator.selector" -}}
app.kubernetes.io/name: mailagent-operator
{{- end -}}

{{/*
A shard of the operator is a dict: root (the chart's context), count (.Values.shards) and index
(0..count-1). One shard is the unsharded operator under the names it always had, so an existing
install renders exactly as before; with more, shard i is mailagent-operator-shard-<i>, the name of
its Deployment and PodDisruptionBudget (the operator names its Lease and field manager the same).
*/}}
{{- define "mailagent-operator.shardName" -}}
mailagent-operator{{ if gt .count 1 }}-shard-{{ .index }}{{ end }}
{{- end -}}

{{/* One shard's pods: the shared selector plus the shard's label, so that the shards'
Deployments (and PodDisruptionBudgets) never claim each other's pods. */}}
{{- define "mailagent-operator.shardSelector" -}}
{{ include "mailagent-operator.selector" .root }}
{{- if gt .count 1 }}
mailagent.dev/shard: {{ .index | quote }}
{{- end }}
{{- end -}}

{{/* The operator's pod template, for one shard (a dict, see shardName): every shard runs the
same hardened pod and differs only in its label and SHARD_* environment. */}}
{{- define "mailagent-operator.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "mailagent-operator.shardSelector" . | nindent 4 }}
spec:
  serviceAccountName: {{ $root.Values.serviceAccount.name }}
  automountServiceAccountToken: true
  enableServiceLinks: false
  terminationGracePeriodSeconds: 30
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: operator
      image: {{ include "mailagent-operator.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        - name: LEADER_ELECTION
          value: "true"
        {{- if gt .count 1 }}
        # This pod's slice of the MailAgents and AuthPolicies, its Lease and its field manager
        # (mailagent-operator-shard-<index>).
        - name: SHARD_COUNT
          value: {{ .count | quote }}
        - name: SHARD_INDEX
          value: {{ .index | quote }}
        {{- end }}
        # Each agent's NetworkPolicy admits this namespace's operator pods (the Verified probes).
        - name: IN_CLUSTER
          value: "true"
        - name: VERIFY_INTERVAL_SECONDS
          value: {{ $root.Values.verifyIntervalSeconds | quote }}
        - name: METRICS_ADDR
          value: "0.0.0.0:8081"
        - name: LOG_FORMAT
          value: {{ $root.Values.logFormat | quote }}
        - name: RECONCILE_CONCURRENCY
          value: {{ $root.Values.reconcileConcurrency | quote }}
        {{- with $root.Values.watchNamespaces }}
        - name: WATCH_NAMESPACE
          value: {{ join "," . | quote }}
        {{- end }}
        # Each AuthPolicy's rotation CronJob runs `mailagent-operator rotate` from this same image.
        - name: ROTATOR_IMAGE
          value: {{ include "mailagent-operator.image" $root | quote }}
        - name: MALLOC_ARENA_MAX
          value: {{ $root.Values.mallocArenaMax | quote }}
      ports:
        - name: http-metrics
          containerPort: 8081
          protocol: TCP
      startupProbe:
        httpGet: {path: /healthz, port: http-metrics}
        periodSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet: {path: /healthz, port: http-metrics}
        periodSeconds: 10
        failureThreshold: 3
      # A standby that has joined the election is Ready (it can take over, and a
      # PodDisruptionBudget must be able to count it, or a drain of the leader's node waits for
      # ever); the leader is Ready once its caches are listed. Who leads: the
      # mailagent_operator_leading gauge.
      readinessProbe:
        httpGet: {path: /readyz, port: http-metrics}
        periodSeconds: 5
        failureThreshold: 2
      resources:
        {{- toYaml $root.Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        privileged: false
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
{{- end -}}

{{/* The operator image: repository@digest when a digest is pinned, else repository:tag (default: appVersion). */}}
{{- define "mailagent-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
