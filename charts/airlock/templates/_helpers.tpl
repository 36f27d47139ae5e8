{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "airlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every name; "airlock" for a release called airlock. */}}
{{- define "airlock.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "airlock.webhookName" -}}{{ include "airlock.fullname" . | trunc 55 | trimSuffix "-" }}-webhook{{- end -}}
{{- define "airlock.controllerName" -}}{{ include "airlock.fullname" . | trunc 52 | trimSuffix "-" }}-controller{{- end -}}
{{- define "airlock.tlsSecretName" -}}{{ default (printf "%s-tls" (include "airlock.webhookName" .)) .Values.certificates.secretName }}{{- end -}}

{{/* Labels --------------------------------------------------------------------------------- */}}

{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "airlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "airlock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airlock
airlock.dev/owner: {{ .Values.owner | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* labels of one component: airlock.componentLabels (dict "ctx" $ "component" "webhook") */}}
{{- define "airlock.componentLabels" -}}
{{ include "airlock.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "airlock.componentSelector" -}}
{{ include "airlock.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image ---------------------------------------------------------------------------------- */}}

{{- define "airlock.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Namespaces no webhook ever sees: the configured ones plus the release's own, sorted. */}}
{{- define "airlock.excludedNamespaces" -}}
{{- $all := concat .Values.excludedNamespaces (list .Release.Namespace) | uniq | sortAlpha -}}
{{- toYaml $all -}}
{{- end -}}

{{/*
The API credentials of a pod that calls the Kubernetes API. The pod sets
automountServiceAccountToken: false and mounts the same three files the automatic mount would
provide (token, ca.crt, namespace) at the same path, so the Kubernetes client's in-cluster
configuration finds them; the token is short-lived and refreshed by the kubelet. Being explicit
keeps the token out of every container that does not need it.
*/}}
{{- define "airlock.apiAccessVolume" -}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ .Values.serviceAccountTokenExpirationSeconds }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end -}}

{{- define "airlock.apiAccessMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}

{{/* Fingerprint key -------------------------------------------------------------------------
The Secret whose `key` keys credential fingerprints: an existing one, the chart's, or "" (none,
fingerprints unkeyed). Mounted read-only into the webhook and the controller at the same path,
so every replica of both computes the same fingerprints; no API permission is needed to read it.
*/}}
{{- define "airlock.fingerprintKeySecret" -}}
{{- if .Values.fingerprintKey.existingSecret -}}
{{ .Values.fingerprintKey.existingSecret }}
{{- else if .Values.fingerprintKey.create -}}
{{ include "airlock.fullname" . }}-fingerprint-key
{{- end -}}
{{- end -}}

{{- define "airlock.fingerprintKeyArg" -}}
{{- if include "airlock.fingerprintKeySecret" . -}}
- --fingerprint-key-file=/etc/airlock/fingerprint/key
{{- end -}}
{{- end -}}

{{- define "airlock.fingerprintKeyMount" -}}
{{- if include "airlock.fingerprintKeySecret" . -}}
- name: fingerprint-key
  mountPath: /etc/airlock/fingerprint
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "airlock.fingerprintKeyVolume" -}}
{{- with include "airlock.fingerprintKeySecret" . -}}
- name: fingerprint-key
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: key
        path: key
{{- end -}}
{{- end -}}

{{/* One webhook entry of the admission configurations, see airlock.admission.webhookconfig:
     include "airlock.webhook" (dict "ctx" $ "name" "pods.validate.airlock.dev" "path" "/validate"
       "cfg" .Values.webhooks.pods "rules" <YAML list> "mutating" false) */}}
{{- define "airlock.webhook" -}}
{{- $ctx := .ctx -}}
- name: {{ .name }}
  admissionReviewVersions: ["v1"]
  sideEffects: None
  failurePolicy: {{ .cfg.failurePolicy }}
  timeoutSeconds: {{ .cfg.timeoutSeconds }}
  matchPolicy: Equivalent
  clientConfig:
    service:
      namespace: {{ $ctx.Release.Namespace }}
      name: {{ include "airlock.webhookName" $ctx }}
      path: {{ .path }}
      port: 443
    {{- with $ctx.Values.webhooks.caBundle }}
    caBundle: {{ . }}
    {{- end }}
  namespaceSelector:
    {{- with $ctx.Values.webhooks.namespaceSelector.matchLabels }}
    matchLabels:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values:
          {{- include "airlock.excludedNamespaces" $ctx | nindent 10 }}
      {{- with $ctx.Values.webhooks.namespaceSelector.matchExpressions }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  rules:
    {{- .rules | nindent 4 }}
  {{- with .matchConditions }}
  matchConditions:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if .mutating }}
  reinvocationPolicy: Never
  {{- end }}
{{- end -}}
