{{- define "kmo-worker.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kmo-worker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kmo-worker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kmo-worker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kmo-worker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kmo-worker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kmo-worker.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kmo-worker.secretName" -}}
{{- default (include "kmo-worker.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "kmo-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kmo-worker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The container environment shared by the worker and the migration Job. */}}
{{- define "kmo-worker.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "kmo-worker.fullname" . }}
# The URLs (with their passwords) are read from the Secret mounted as files, never from the
# environment, where anything that dumps it would show them (KMO_<NAME>_FILE, README Security).
env:
  - name: KMO_BROKER_URL_FILE
    value: /run/secrets/kmo/KMO_BROKER_URL
  - name: KMO_DATABASE_URL_FILE
    value: /run/secrets/kmo/KMO_DATABASE_URL
{{- with .Values.brokerTls }}
{{- if .secretName }}
  - name: KMO_BROKER_CA_FILE
    value: /run/secrets/kmo-broker-tls/ca.crt
{{- if .clientCertificate }}
  - name: KMO_BROKER_CERT_FILE
    value: /run/secrets/kmo-broker-tls/tls.crt
  - name: KMO_BROKER_KEY_FILE
    value: /run/secrets/kmo-broker-tls/tls.key
{{- end }}
{{- if .external }}
  - name: KMO_BROKER_TLS_EXTERNAL
    value: "true"
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "kmo-worker.secretMount" -}}
- name: secrets
  mountPath: /run/secrets/kmo
  readOnly: true
{{- if .Values.brokerTls.secretName }}
- name: broker-tls
  mountPath: /run/secrets/kmo-broker-tls
  readOnly: true
{{- end }}
{{- if .Values.databaseTls.secretName }}
- name: database-tls
  mountPath: /run/secrets/kmo-database-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "kmo-worker.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
{{- with .Values.brokerTls.secretName }}
- name: broker-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- with .Values.databaseTls.secretName }}
- name: database-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "kmo-worker.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}
