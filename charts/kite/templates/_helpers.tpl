{{/* Names, labels and the roles. */}}

{{- define "kite.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kite.fullname" -}}
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

{{- define "kite.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* kite.selectorLabels: (dict "ctx" $ "component" ROLE); component may be empty. */}}
{{- define "kite.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kite.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* kite.labels: (dict "ctx" $ "component" ROLE); component may be empty. */}}
{{- define "kite.labels" -}}
helm.sh/chart: {{ include "kite.chart" .ctx }}
{{ include "kite.selectorLabels" . }}
app.kubernetes.io/version: {{ include "kite.imageTag" .ctx | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: kite
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end -}}

{{/* The roles, one Deployment each: "standalone", or every role in distributed mode. */}}
{{- define "kite.roles" -}}
{{- if eq .Values.mode "standalone" -}}
standalone
{{- else if eq .Values.mode "distributed" -}}
api,executor,worker,scheduler,indexer
{{- else -}}
{{- fail (printf "mode: %q is not one of standalone, distributed" .Values.mode) -}}
{{- end -}}
{{- end -}}

{{/* The role that serves the API: its pods are behind the Service. */}}
{{- define "kite.apiComponent" -}}
{{- if eq .Values.mode "standalone" -}}standalone{{- else -}}api{{- end -}}
{{- end -}}

{{- define "kite.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kite.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kite.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{- define "kite.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "kite.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* Where things are mounted in the pods. */}}
{{- define "kite.configDir" -}}/etc/kite{{- end -}}
{{- define "kite.dataDir" -}}/var/lib/kite{{- end -}}
{{- define "kite.kafkaTLSDir" -}}/var/run/secrets/kite/kafka-tls{{- end -}}
{{- define "kite.esCADir" -}}/var/run/secrets/kite/elasticsearch-ca{{- end -}}
{{- define "kite.gcsDir" -}}/var/run/secrets/kite/gcs{{- end -}}

{{/* The storage type: the value, or local (standalone) / gcs (distributed). */}}
{{- define "kite.storageType" -}}
{{- if .Values.storage.type -}}
{{- .Values.storage.type -}}
{{- else if eq .Values.mode "standalone" -}}
local
{{- else -}}
gcs
{{- end -}}
{{- end -}}

{{/*
kite.computedConfig: the configuration the chart derives from the values, as YAML.
*/}}
{{- define "kite.computedConfig" -}}
{{- $v := .Values -}}
{{- $standalone := eq $v.mode "standalone" -}}
{{- $grace := printf "%ds" (int $v.shutdownGracePeriod) -}}
{{- $cfg := dict
  "data_dir" (include "kite.dataDir" .)
  "health_addr" (printf "0.0.0.0:%d" (int $v.ports.health))
  "metrics_addr" (printf "0.0.0.0:%d" (int $v.ports.metrics))
  "log" (dict "level" $v.log.level "format" $v.log.format)
  "api" (dict "grpc_addr" (printf "0.0.0.0:%d" (int $v.ports.grpc)) "http_addr" (printf "0.0.0.0:%d" (int $v.ports.http)) "shutdown_timeout" $grace)
  "worker" (dict "shutdown_grace" $grace)
-}}
{{- /* Kafka */ -}}
{{- $kafka := dict -}}
{{- with $v.kafka.brokers }}{{ $_ := set $kafka "brokers" . }}{{ end -}}
{{- $tls := $v.kafka.tls -}}
{{- if $tls.enabled -}}
{{- $t := dict "enabled" true -}}
{{- if $tls.caKey }}{{ $_ := set $t "ca_file" (printf "%s/%s" (include "kite.kafkaTLSDir" .) $tls.caKey) }}{{ end -}}
{{- if $tls.certKey }}{{ $_ := set $t "cert_file" (printf "%s/%s" (include "kite.kafkaTLSDir" .) $tls.certKey) }}{{ end -}}
{{- if $tls.keyKey }}{{ $_ := set $t "key_file" (printf "%s/%s" (include "kite.kafkaTLSDir" .) $tls.keyKey) }}{{ end -}}
{{- if $tls.insecureSkipVerify }}{{ $_ := set $t "insecure_skip_verify" true }}{{ end -}}
{{- $_ := set $kafka "tls" $t -}}
{{- end -}}
{{- $sasl := $v.kafka.sasl -}}
{{- if $sasl.mechanism -}}
{{- $s := dict "mechanism" $sasl.mechanism -}}
{{- if and $sasl.username (not $sasl.usernameKey) }}{{ $_ := set $s "username" $sasl.username }}{{ end -}}
{{- $_ := set $kafka "sasl" $s -}}
{{- end -}}
{{- if $kafka }}{{ $_ := set $cfg "kafka" $kafka }}{{ end -}}
{{- /* Repository */ -}}
{{- $es := $v.elasticsearch -}}
{{- if or $es.urls (not $standalone) -}}
{{- $e := dict "flavor" $es.flavor -}}
{{- with $es.urls }}{{ $_ := set $e "urls" . }}{{ end -}}
{{- if and $es.username (not $es.usernameKey) }}{{ $_ := set $e "username" $es.username }}{{ end -}}
{{- if $es.caSecret }}{{ $_ := set $e "ca_cert_file" (printf "%s/%s" (include "kite.esCADir" .) $es.caKey) }}{{ end -}}
{{- $_ := set $cfg "repository" (dict "type" "elasticsearch" "elasticsearch" $e) -}}
{{- else -}}
{{- $_ := set $cfg "repository" (dict "type" "embedded") -}}
{{- end -}}
{{- /* Storage */ -}}
{{- $storage := dict "type" (include "kite.storageType" .) -}}
{{- $gcs := $v.storage.gcs -}}
{{- if eq (include "kite.storageType" .) "gcs" -}}
{{- $g := dict -}}
{{- with $gcs.bucket }}{{ $_ := set $g "bucket" . }}{{ end -}}
{{- with $gcs.prefix }}{{ $_ := set $g "prefix" . }}{{ end -}}
{{- if $gcs.credentialsSecret }}{{ $_ := set $g "credentials_file" (printf "%s/%s" (include "kite.gcsDir" .) $gcs.credentialsKey) }}{{ end -}}
{{- $_ := set $storage "gcs" $g -}}
{{- end -}}
{{- if and (not $standalone) $v.storage.local.sharedClaim -}}
{{- $_ := set $storage "local" (dict "dir" (printf "%s/storage" (include "kite.dataDir" .))) -}}
{{- end -}}
{{- $_ := set $cfg "storage" $storage -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
kite.config: the computed configuration with .Values.config merged over it, checked, as
YAML. The ConfigMap holds it and the pods' checksum/config annotation hashes it.
*/}}
{{- define "kite.config" -}}
{{- $v := .Values -}}
{{- $standalone := eq $v.mode "standalone" -}}
{{- /* The shutdown deadlines follow shutdownGracePeriod, which terminationGracePeriodSeconds is computed from. */ -}}
{{- if or (get (get $v.config "worker" | default dict) "shutdown_grace") (get (get $v.config "api" | default dict) "shutdown_timeout") -}}
{{- fail "config.worker.shutdown_grace, config.api.shutdown_timeout: set shutdownGracePeriod instead (the pods' terminationGracePeriodSeconds is computed from it, so Kubernetes never kills Kite before its own deadline)" -}}
{{- end -}}
{{- $cfg := mustMergeOverwrite (fromYaml (include "kite.computedConfig" .)) (deepCopy $v.config) -}}
{{- /* No secret values in a ConfigMap. */ -}}
{{- $kafka := get $cfg "kafka" | default dict -}}
{{- if get (get $kafka "sasl" | default dict) "password" -}}
{{- fail "config.kafka.sasl.password: no passwords in values; put it in a Secret and set kafka.sasl.existingSecret and kafka.sasl.passwordKey" -}}
{{- end -}}
{{- $repo := get $cfg "repository" | default dict -}}
{{- $esCfg := get $repo "elasticsearch" | default dict -}}
{{- if or (get $esCfg "password") (get $esCfg "api_key") -}}
{{- fail "config.repository.elasticsearch: no passwords or API keys in values; put them in a Secret and set elasticsearch.existingSecret with elasticsearch.passwordKey or elasticsearch.apiKeyKey" -}}
{{- end -}}
{{- /* What distributed mode needs. */ -}}
{{- if not $standalone -}}
{{- if not (get $kafka "brokers") -}}
{{- fail "kafka.brokers: distributed mode needs the Kafka cluster's brokers (a list of host:port)" -}}
{{- end -}}
{{- if eq (get $repo "type") "embedded" -}}
{{- fail "repository.type: embedded is only for standalone (the index lives in one pod); distributed mode needs elasticsearch (elasticsearch.urls)" -}}
{{- end -}}
{{- $_ := required "elasticsearch.urls: distributed mode needs the URLs of an Elasticsearch 8 or OpenSearch 2 cluster (the indexer writes there, the API searches there)" (get $esCfg "urls") -}}
{{- end -}}
{{- $storage := get $cfg "storage" | default dict -}}
{{- $storageType := get $storage "type" -}}
{{- if and (not $standalone) (eq $storageType "local") (not $v.storage.local.sharedClaim) -}}
{{- fail "storage.type: local cannot be shared by the five role Deployments of distributed mode; use gcs (storage.gcs.bucket), or set storage.local.sharedClaim to an existing ReadWriteMany PersistentVolumeClaim" -}}
{{- end -}}
{{- if eq $storageType "gcs" -}}
{{- $_ := required "storage.gcs.bucket: internal storage on GCS needs a bucket (it must exist)" (get (get $storage "gcs" | default dict) "bucket") -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
kite.graceBudgets: how many shutdownGracePeriod budgets a role's process spends one after
the other when it stops: standalone spends api.shutdown_timeout, then
worker.shutdown_grace; a single role at most one of them (the executor, scheduler and
indexer get one too, for their last commits).
*/}}
{{- define "kite.graceBudgets" -}}
{{- if eq . "standalone" -}}2{{- else -}}1{{- end -}}
{{- end -}}

{{/*
kite.usesElasticsearch: (dict "ctx" $ "role" ROLE) → "true" when the role talks to
Elasticsearch (api and indexer, or standalone with elasticsearch.urls): it gets its
credentials and CA.
*/}}
{{- define "kite.usesElasticsearch" -}}
{{- if and (has .role (list "standalone" "api" "indexer")) (or .ctx.Values.elasticsearch.urls (ne .ctx.Values.mode "standalone")) -}}true{{- end -}}
{{- end -}}

{{/* kite.kafkaTLSItems: the items of the Kafka TLS Secret volume; empty: no volume. */}}
{{- define "kite.kafkaTLSItems" -}}
{{- $tls := .Values.kafka.tls -}}
{{- if and $tls.enabled (or $tls.caKey $tls.certKey $tls.keyKey) -}}
{{- $_ := required "kafka.tls.secretName: the Secret holding the files of kafka.tls.caKey/certKey/keyKey" $tls.secretName -}}
{{- if and (or $tls.certKey $tls.keyKey) (not (and $tls.certKey $tls.keyKey)) -}}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey: the client certificate and its key go together (both or neither)" -}}
{{- end -}}
{{- range $k := list $tls.caKey $tls.certKey $tls.keyKey }}
{{- if $k }}
- key: {{ $k }}
  path: {{ $k }}
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
kite.secretEnv: (dict "ctx" $ "role" ROLE) → the env entries that read credentials from
Secrets: Kafka SASL (every role), Elasticsearch (the roles that search or index).
*/}}
{{- define "kite.secretEnv" -}}
{{- $sasl := .ctx.Values.kafka.sasl -}}
{{- if $sasl.mechanism }}
{{- $secret := required "kafka.sasl.existingSecret: SASL needs the Secret holding the password (never put it in values)" $sasl.existingSecret }}
{{- if $sasl.usernameKey }}
- name: KITE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $sasl.usernameKey }}
{{- else if not $sasl.username }}
{{- fail "kafka.sasl.username or kafka.sasl.usernameKey: SASL needs a user name" }}
{{- end }}
- name: KITE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ required "kafka.sasl.passwordKey: the key of the password in kafka.sasl.existingSecret" $sasl.passwordKey }}
{{- end }}
{{- $es := .ctx.Values.elasticsearch -}}
{{- if and $es.passwordKey $es.apiKeyKey }}
{{- fail "elasticsearch.passwordKey and elasticsearch.apiKeyKey: Kite authenticates with a password or an API key, not both" }}
{{- end }}
{{- if and (or $es.usernameKey $es.passwordKey $es.apiKeyKey) (not $es.existingSecret) }}
{{- fail "elasticsearch.existingSecret: the Secret holding elasticsearch.usernameKey/passwordKey/apiKeyKey" }}
{{- end }}
{{- if include "kite.usesElasticsearch" . }}
{{- range $key := list (list "usernameKey" "KITE_REPOSITORY_ELASTICSEARCH_USERNAME") (list "passwordKey" "KITE_REPOSITORY_ELASTICSEARCH_PASSWORD") (list "apiKeyKey" "KITE_REPOSITORY_ELASTICSEARCH_API_KEY") }}
{{- with index $es (first $key) }}
- name: {{ last $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $es.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
