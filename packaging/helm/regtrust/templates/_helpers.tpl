{{/* Names: with release name "regtrust" the objects are named as in the kustomize base. */}}
{{- define "regtrust.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "regtrust.agentName" -}}{{ include "regtrust.fullname" . }}-agent{{- end -}}
{{- define "regtrust.aggregatorName" -}}{{ include "regtrust.fullname" . }}-aggregator{{- end -}}

{{- define "regtrust.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: regtrust
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "regtrust.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "regtrust.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The Secret holding the aggregator's write token. */}}
{{- define "regtrust.tokenSecret" -}}
{{- .Values.aggregator.token.existingSecret | default (printf "%s-report-token" (include "regtrust.fullname" .)) -}}
{{- end -}}

{{- define "regtrust.readTokenSecret" -}}
{{- .Values.aggregator.readToken.existingSecret | default (printf "%s-read-token" (include "regtrust.fullname" .)) -}}
{{- end -}}

{{/* Where agents push: an explicit URL, else this release's aggregator, else nowhere.
     $(POD_NAMESPACE) is expanded by kubelet from the agent's env, as in the kustomize base. */}}
{{- define "regtrust.reportUrl" -}}
{{- if .Values.agent.report.url -}}
{{ .Values.agent.report.url }}
{{- else if .Values.aggregator.enabled -}}
http://{{ include "regtrust.aggregatorName" . }}.$(POD_NAMESPACE).svc:{{ .Values.aggregator.service.port }}/api/v1/reports
{{- end -}}
{{- end -}}

{{- define "regtrust.reportTokenSecret" -}}
{{- .Values.agent.report.tokenSecret | default (include "regtrust.tokenSecret" .) -}}
{{- end -}}

{{- define "regtrust.reportTokenKey" -}}
{{- if .Values.agent.report.tokenSecret -}}
{{ .Values.agent.report.tokenKey }}
{{- else -}}
{{ .Values.aggregator.token.key }}
{{- end -}}
{{- end -}}

{{/* A random token created once and kept: lookup finds the live one on upgrades. */}}
{{- define "regtrust.generatedToken" -}}
{{- $secret := lookup "v1" "Secret" .namespace .name -}}
{{- if and $secret $secret.data (hasKey $secret.data .key) -}}
{{- index $secret.data .key -}}
{{- else -}}
{{- randAlphaNum 48 | b64enc -}}
{{- end -}}
{{- end -}}

{{/* checkov skips shared by both workloads: see the comments in daemonset/agent.yaml. */}}
{{- define "regtrust.imageSkips" -}}
checkov.io/skip1: CKV_K8S_15=IfNotPresent so pods restart while the registry is unreachable (pullPolicy is a value)
{{- if not .Values.image.digest }}
checkov.io/skip2: CKV_K8S_43=the image is built by the operator; set image.digest to pull by digest
{{- end }}
{{- end -}}

{{/* The agent's host dirs besides /etc, /usr and the state dir, in mount order (a parent
     before what is mounted inside it), from hostPaths: name, path, type, readOnly. */}}
{{- define "regtrust.hostDirs" -}}
{{- $dirs := list -}}
{{- range .Values.hostPaths.trustDirs -}}
{{- if eq . "containerd" -}}
{{- $dirs = append $dirs (dict "name" "containerd-certs" "path" "/etc/containerd/certs.d" "type" "DirectoryOrCreate") -}}
{{- else if eq . "crio" -}}
{{- $dirs = append $dirs (dict "name" "containers-certs" "path" "/etc/containers/certs.d" "type" "DirectoryOrCreate") -}}
{{- else if eq . "docker" -}}
{{- $dirs = append $dirs (dict "name" "docker-certs" "path" "/etc/docker/certs.d" "type" "DirectoryOrCreate") -}}
{{- else if or (eq . "k3s") (eq . "rke2") -}}
{{- $base := printf "/var/lib/rancher/%s/agent/etc/containerd" . -}}
{{- $dirs = append $dirs (dict "name" (printf "%s-containerd" .) "path" $base "type" "Directory" "readOnly" true) -}}
{{- $dirs = append $dirs (dict "name" (printf "%s-certs" .) "path" (printf "%s/certs.d" $base) "type" "DirectoryOrCreate") -}}
{{- else if eq . "microk8s" -}}
{{- $dirs = append $dirs (dict "name" "microk8s-args" "path" "/var/snap/microk8s/current/args" "type" "Directory" "readOnly" true) -}}
{{- $dirs = append $dirs (dict "name" "microk8s-certs" "path" "/var/snap/microk8s/current/args/certs.d" "type" "DirectoryOrCreate") -}}
{{- end -}}
{{- end -}}
{{- range $i, $p := .Values.hostPaths.extraTrustDirs -}}
{{- $dirs = append $dirs (dict "name" (printf "extra-trust-%d" $i) "path" $p "type" "DirectoryOrCreate") -}}
{{- end -}}
{{- if .Values.hostPaths.suseTrustStore -}}
{{- $dirs = append $dirs (dict "name" "suse-ca-certificates" "path" "/var/lib/ca-certificates" "type" "Directory" "readOnly" true) -}}
{{- end -}}
{{- toYaml $dirs -}}
{{- end -}}
