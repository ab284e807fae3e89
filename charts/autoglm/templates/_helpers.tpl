{{/* The chart name, or nameOverride. */}}
{{- define "autoglm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's base name for its objects: fullnameOverride, else the release name when it
already contains the chart name, else "<release>-<chart>"; 63 characters at most (DNS labels).
*/}}
{{- define "autoglm.fullname" -}}
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
The name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the fullname plus the
release namespace, so that releases of the same name in two namespaces do not collide.
*/}}
{{- define "autoglm.clusterName" -}}
{{- printf "%s-%s" (include "autoglm.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "autoglm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "autoglm.labels" -}}
helm.sh/chart: {{ include "autoglm.chart" . }}
{{ include "autoglm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: autoglm
{{- end }}

{{/* The labels that select the operator's pods; immutable once installed. */}}
{{- define "autoglm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "autoglm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "autoglm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "autoglm.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "autoglm.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "autoglm.serverImage" -}}
{{- printf "%s:%s" .Values.serverImage.repository (.Values.serverImage.tag | default .Chart.AppVersion) }}
{{- end }}
