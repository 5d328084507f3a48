package charttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kiteflow/kite/services/app"
)

// What the chart promises, checked against every rendering.
const (
	configDir  = "/etc/kite"
	configFile = configDir + "/config.yaml"
	nonRootUID = 65532
)

// distributedRoles are the Deployments of distributed mode, one per role.
var distributedRoles = []string{app.RoleAPI, app.RoleExecutor, app.RoleWorker, app.RoleScheduler, app.RoleIndexer}

// secretRefs lists what a container takes from Secrets: "env NAME" or "file CONFIG.KEY"
// → "secret/key".
type secretRefs map[string]string

// TestValueSets renders each value set of charts/kite/ci (and a variant set with --set)
// and checks the manifests operators rely on.
func TestValueSets(t *testing.T) {
	helm := helmBinary(t)
	kafkaAll := secretRefs{
		"env KITE_KAFKA_SASL_USERNAME": "kite-kafka-sasl/username",
		"env KITE_KAFKA_SASL_PASSWORD": "kite-kafka-sasl/password",
		"file kafka.tls.ca_file":       "kite-kafka-tls/ca.crt",
		"file kafka.tls.cert_file":     "kite-kafka-tls/tls.crt",
		"file kafka.tls.key_file":      "kite-kafka-tls/tls.key",
		"file storage.gcs.credentials": "kite-gcs-key/service-account.json",
	}
	searching := maps.Clone(kafkaAll)
	searching["env KITE_REPOSITORY_ELASTICSEARCH_PASSWORD"] = "kite-elasticsearch/password"
	searching["file repository.elasticsearch.ca_cert_file"] = "kite-elasticsearch-ca/ca.pem"

	tests := []struct {
		name string
		args []string
		// roles are the Deployments' roles, in the order of distributedRoles.
		roles []string
		// secrets by role: what each role's container reads from Secrets (exactly).
		secrets map[string]secretRefs
		// autoscaled roles have an HPA and no replicas of their own.
		autoscaled []string
		check      func(t *testing.T, m *manifests, cfgs map[string]app.Config)
	}{{
		name:  "standalone",
		args:  []string{"-f", "../kite/ci/standalone-values.yaml"},
		roles: []string{app.Standalone},
		check: func(t *testing.T, m *manifests, cfgs map[string]app.Config) {
			d := m.deployments[release+"-standalone"]
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("standalone: want 1 replica and the Recreate strategy (one pod owns the data directory), got %v, %q", d.Spec.Replicas, d.Spec.Strategy.Type)
			}
			data := volume(d, "data")
			if data == nil || data.PersistentVolumeClaim == nil || m.claims[data.PersistentVolumeClaim.ClaimName] == nil {
				t.Errorf("standalone: the data directory must be on the chart's PersistentVolumeClaim by default, got %+v", data)
			}
			cfg := cfgs[app.Standalone]
			if len(cfg.Kafka.Brokers) != 0 || cfg.Repository.Type != app.RepositoryEmbedded || cfg.Storage.Type != app.StorageLocal {
				t.Errorf("standalone defaults: want the embedded broker, index and local storage, got brokers %v, repository %q, storage %q",
					cfg.Kafka.Brokers, cfg.Repository.Type, cfg.Storage.Type)
			}
			if len(m.pdbs)+len(m.hpas)+len(m.networkPolicies)+len(m.serviceMonitors) != 0 {
				t.Errorf("standalone defaults: want no PDB, HPA, NetworkPolicy or ServiceMonitor")
			}
		},
	}, {
		name:  "distributed",
		args:  []string{"-f", "../kite/ci/distributed-values.yaml"},
		roles: distributedRoles,
		check: func(t *testing.T, m *manifests, cfgs map[string]app.Config) {
			for _, role := range distributedRoles {
				cfg := cfgs[role]
				if cfg.Storage.Type != app.StorageGCS || cfg.Storage.GCS.Bucket != "kite-files" || cfg.Storage.GCS.CredentialsFile != "" {
					t.Errorf("%s: want GCS bucket kite-files with workload identity (no key file), got %+v", role, cfg.Storage)
				}
			}
			sa := m.serviceAccounts[release]
			if sa == nil || sa.Annotations["iam.gke.io/gcp-service-account"] == "" {
				t.Errorf("the ServiceAccount must carry the workload identity annotation of the values, got %+v", sa)
			}
		},
	}, {
		name:  "distributed-autoscaling-tls",
		args:  []string{"-f", "../kite/ci/distributed-autoscaling-tls-values.yaml"},
		roles: distributedRoles,
		secrets: map[string]secretRefs{
			app.RoleAPI: searching, app.RoleIndexer: searching,
			app.RoleExecutor: kafkaAll, app.RoleWorker: kafkaAll, app.RoleScheduler: kafkaAll,
		},
		autoscaled: []string{app.RoleExecutor, app.RoleWorker},
		check: func(t *testing.T, m *manifests, cfgs map[string]app.Config) {
			for _, role := range distributedRoles {
				cfg := cfgs[role]
				if !cfg.Kafka.TLS.Enabled || cfg.Kafka.SASL.Mechanism != "SCRAM-SHA-512" {
					t.Errorf("%s: want Kafka over TLS with SASL SCRAM-SHA-512, got %+v %q", role, cfg.Kafka.TLS, cfg.Kafka.SASL.Mechanism)
				}
				if d := m.deployments[release+"-"+role]; len(d.Spec.Template.Spec.ImagePullSecrets) != 1 {
					t.Errorf("%s: want the values' imagePullSecrets, got %v", role, d.Spec.Template.Spec.ImagePullSecrets)
				}
			}
			if n := len(m.pdbs); n != len(distributedRoles) {
				t.Errorf("want a PodDisruptionBudget per role, got %d", n)
			}
			if len(m.serviceMonitors) != 1 || len(m.networkPolicies) != 1 {
				t.Errorf("want one ServiceMonitor and one NetworkPolicy, got %d and %d", len(m.serviceMonitors), len(m.networkPolicies))
			}
			if svc := m.services[release]; svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
				t.Errorf("want the API Service of type LoadBalancer as the values say")
			}
			if got := cfgs[app.RoleWorker].Worker.Concurrency; got != 32 {
				t.Errorf("worker: the role's env KITE_WORKER_CONCURRENCY=32 must apply, got %d", got)
			}
		},
	}, {
		name: "distributed-shared-local-storage",
		args: []string{"-f", "../kite/ci/distributed-values.yaml",
			"--set", "storage.type=local", "--set", "storage.local.sharedClaim=kite-files"},
		roles: distributedRoles,
		check: func(t *testing.T, m *manifests, cfgs map[string]app.Config) {
			for _, role := range distributedRoles {
				d := m.deployments[release+"-"+role]
				dir := cfgs[role].Storage.Local.Dir
				v := volumeAt(d, container(t, d), dir)
				if v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "kite-files" {
					t.Errorf("%s: storage.local.dir %q must be on the shared claim kite-files, got %+v", role, dir, v)
				}
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := helmTemplate(t.Context(), helm, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			m := decodeManifests(t, out)
			if t.Failed() {
				t.FailNow()
			}
			if len(m.secrets) != 0 {
				t.Errorf("the chart renders Secrets %v: it must only refer to existing ones", sortedKeys(m.secrets))
			}
			var roles []string
			cfgs := map[string]app.Config{}
			for _, name := range sortedKeys(m.deployments) {
				d := m.deployments[name]
				role, cfg, refs := checkDeployment(t, m, d)
				roles = append(roles, role)
				cfgs[role] = cfg
				if want := tt.secrets[role]; !maps.Equal(refs, want) {
					t.Errorf("%s: Secrets referenced:\n got  %v\n want %v", name, refs, want)
				}
				if autoscaled, set := slices.Contains(tt.autoscaled, role), d.Spec.Replicas != nil; autoscaled == set {
					t.Errorf("%s: autoscaled %v, replicas set %v: an HPA's Deployment leaves replicas to it, the others set them", name, autoscaled, set)
				}
			}
			slices.SortFunc(roles, func(a, b string) int {
				return slices.Index(distributedRoles, a) - slices.Index(distributedRoles, b)
			})
			if !slices.Equal(roles, tt.roles) {
				t.Fatalf("Deployments run roles %v, want %v", roles, tt.roles)
			}
			checkAPIService(t, m)
			checkServices(t, m)
			checkHPAs(t, m, tt.autoscaled)
			checkPDBs(t, m)
			checkNetworkPolicies(t, m)
			checkServiceMonitors(t, m)
			tt.check(t, m, cfgs)
		})
	}
}

// checkDeployment checks one role's Deployment and returns its role, the configuration
// its container loads (validated for the role) and what it reads from Secrets.
func checkDeployment(t *testing.T, m *manifests, d *appsv1.Deployment) (string, app.Config, secretRefs) {
	name := d.Name
	role := d.Labels["app.kubernetes.io/component"]
	for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
		if d.Labels[l] == "" || d.Spec.Template.Labels[l] != d.Labels[l] {
			t.Errorf("%s: label %s missing on the Deployment or its pods", name, l)
		}
	}
	if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("%s: the selector does not select the Deployment's own pods", name)
	}
	pod := d.Spec.Template.Spec
	c := container(t, d)
	if want := []string{"server", role}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		t.Errorf("%s: the container runs %v %v, want the image's kite entrypoint with args %v", name, c.Command, c.Args, want)
	}
	roles, err := app.ParseRoles(role)
	if err != nil {
		t.Fatalf("%s: component label %q: %v", name, role, err)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	// gRPC probes on the health port.
	health, ok := ports["health"]
	if !ok {
		t.Errorf("%s: no containerPort named health", name)
	}
	for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		wantService := ""
		if kind == "liveness" {
			wantService = app.HealthLiveness
		}
		switch {
		case p == nil || p.GRPC == nil:
			t.Errorf("%s: no gRPC %s probe", name, kind)
		case p.GRPC.Port != health:
			t.Errorf("%s: the %s probe checks port %d, the health port is %d", name, kind, p.GRPC.Port, health)
		case p.GRPC.Service == nil || *p.GRPC.Service != wantService:
			t.Errorf("%s: the %s probe checks service %v, want %q", name, kind, p.GRPC.Service, wantService)
		}
	}

	// Resources and security.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("%s: no %s request", name, r)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		t.Errorf("%s: no memory limit", name)
	}
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonRootUID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: the pod must run as non-root uid %d with the RuntimeDefault seccomp profile, got %+v", name, nonRootUID, psc)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: the container must have a read-only root filesystem, no privilege escalation and drop ALL capabilities, got %+v", name, sc)
	}
	if pod.ServiceAccountName != "" && pod.ServiceAccountName != "default" && m.serviceAccounts[pod.ServiceAccountName] == nil {
		t.Errorf("%s: ServiceAccount %s is not rendered", name, pod.ServiceAccountName)
	}

	// The configuration: a ConfigMap mounted at /etc/kite, KITE_CONFIG naming the file.
	cm := configMap(t, m, d, c)
	src := cm.Data["config.yaml"]
	sum := sha256.Sum256([]byte(strings.TrimSuffix(src, "\n")))
	if got := d.Spec.Template.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: annotation checksum/config %q is not the config's sha256: pods would not roll when it changes", name, got)
	}
	if v := envValue(c, "KITE_CONFIG"); v != configFile {
		t.Errorf("%s: KITE_CONFIG=%q, want %s", name, v, configFile)
	}
	checkNoSecretValues(t, name, src)
	cfg, refs := loadConfig(t, d, c, src, roles)
	if err := cfg.Validate(roles); err != nil {
		t.Errorf("%s: the rendered configuration is invalid for %s:\n%v\n%s", name, role, err, src)
	}

	// The addresses Kite listens on are the container's ports, on every interface.
	checkAddr(t, name, "health_addr", cfg.HealthAddr, ports, "health")
	if roles.Has(app.RoleAPI) {
		checkAddr(t, name, "api.grpc_addr", cfg.API.GRPCAddr, ports, "grpc")
		checkAddr(t, name, "api.http_addr", cfg.API.HTTPAddr, ports, "http")
	} else {
		checkAddr(t, name, "metrics_addr", cfg.MetricsAddr, ports, "metrics")
	}

	// Kubernetes waits longer than Kite's own shutdown deadlines, spent one after the other.
	var budget time.Duration
	if roles.Has(app.RoleAPI) {
		budget += cfg.API.ShutdownTimeout
	}
	margin := 10 * time.Second
	if roles.Has(app.RoleWorker) {
		// After its grace a worker may wait 15s for attempts that ignore
		// cancellation, 5s to say it is stopping and 5s to flush.
		budget += cfg.Worker.ShutdownGrace
		margin = 25 * time.Second
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds (Kite's shutdown deadlines add up to %s)", name, budget)
	} else if time.Duration(*g)*time.Second < budget+margin {
		t.Errorf("%s: terminationGracePeriodSeconds %d leaves less than %s after Kite's shutdown deadlines (%s)", name, *g, margin, budget)
	}

	// With a read-only root filesystem, every folder Kite writes is a writable volume.
	writable := []string{"/tmp"}
	if roles.Standalone {
		writable = append(writable, cfg.DataDir)
	}
	if cfg.Storage.Type == app.StorageLocal {
		dir := cfg.Storage.Local.Dir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "storage")
		}
		writable = append(writable, dir)
	}
	if cfg.Executor.StateDir != "" && roles.Has(app.RoleExecutor) {
		writable = append(writable, cfg.Executor.StateDir)
	}
	for _, dir := range writable {
		v := volumeAt(d, c, dir)
		if v == nil || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil) {
			t.Errorf("%s: %s is not on a writable emptyDir or PersistentVolumeClaim (the root filesystem is read-only)", name, dir)
		}
	}
	return role, cfg, refs
}

// loadConfig loads the rendered configuration as `kite server` does (app.Load: strict
// YAML, then the container's KITE_ environment), with each Secret-backed variable given a
// placeholder and each file from a Secret volume replaced by a local file (Validate reads
// them). It returns what came from Secrets. The repository's files count only for the
// roles that open the repository (api, indexer), as in Config.Validate.
func loadConfig(t *testing.T, d *appsv1.Deployment, c *corev1.Container, src string, roles app.Roles) (app.Config, secretRefs) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	known := app.EnvNames()
	refs := secretRefs{}
	var env []string
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, app.EnvPrefix) && e.Name != "KITE_CONFIG" && !slices.Contains(known, e.Name) {
			t.Errorf("%s: env %s overrides no configuration field (Kite ignores it): see kite config env", d.Name, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name == "" || ref.Key == "" {
				t.Errorf("%s: env %s refers to a Secret without a name or key", d.Name, e.Name)
			}
			refs["env "+e.Name] = ref.Name + "/" + ref.Key
			env = append(env, e.Name+"=from-secret-"+ref.Key)
		default:
			t.Errorf("%s: env %s: only values and secretKeyRefs are expected", d.Name, e.Name)
		}
	}
	cfg, err := app.Load(path, env)
	if err != nil {
		t.Fatalf("%s: loading the rendered configuration as kite does: %v\n%s", d.Name, err, src)
	}
	searches := roles.Has(app.RoleAPI) || roles.Has(app.RoleIndexer)
	for _, f := range []struct {
		key  string
		path *string
		used bool
	}{
		{"kafka.tls.ca_file", &cfg.Kafka.TLS.CAFile, true},
		{"kafka.tls.cert_file", &cfg.Kafka.TLS.CertFile, true},
		{"kafka.tls.key_file", &cfg.Kafka.TLS.KeyFile, true},
		{"repository.elasticsearch.ca_cert_file", &cfg.Repository.Elasticsearch.CACertFile, searches},
		{"storage.gcs.credentials", &cfg.Storage.GCS.CredentialsFile, true},
	} {
		if *f.path == "" || !f.used {
			continue
		}
		secret, key, ok := secretFile(d, c, *f.path)
		if !ok {
			t.Errorf("%s: %s %s is not a key of a mounted Secret", d.Name, f.key, *f.path)
			continue
		}
		refs["file "+f.key] = secret + "/" + key
		local := filepath.Join(dir, strings.ReplaceAll(f.key, ".", "-"))
		if err := os.WriteFile(local, []byte("placeholder for "+*f.path), 0o600); err != nil {
			t.Fatal(err)
		}
		*f.path = local
	}
	return cfg, refs
}

// secretFile finds the Secret and key that a file path of the container comes from.
func secretFile(d *appsv1.Deployment, c *corev1.Container, path string) (secret, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		rel, found := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !found {
			continue
		}
		v := volume(d, vm.Name)
		if v == nil || v.Secret == nil {
			continue
		}
		if len(v.Secret.Items) == 0 {
			return v.Secret.SecretName, rel, true
		}
		for _, it := range v.Secret.Items {
			if it.Path == rel {
				return v.Secret.SecretName, it.Key, true
			}
		}
	}
	return "", "", false
}

// checkNoSecretValues refuses passwords and API keys in the ConfigMap.
func checkNoSecretValues(t *testing.T, name, src string) {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(src), &raw); err != nil {
		t.Fatalf("%s: config.yaml: %v", name, err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, sub := range m {
			if (k == "password" || k == "api_key") && sub != "" {
				t.Errorf("%s: the ConfigMap holds a secret value at %s%s", name, path, k)
			}
			walk(path+k+".", sub)
		}
	}
	walk("", raw)
}

// checkAddr checks that addr listens on every interface at the container port named port.
func checkAddr(t *testing.T, name, key, addr string, ports map[string]int32, port string) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	want, ok := ports[port]
	switch {
	case err != nil:
		t.Errorf("%s: %s %q: %v", name, key, addr, err)
	case host != "" && host != "0.0.0.0" && host != "::":
		t.Errorf("%s: %s %q does not listen on every interface: the pod's port is unreachable", name, key, addr)
	case !ok || p != fmt.Sprint(want):
		t.Errorf("%s: %s %q is not on the containerPort named %s (%d)", name, key, addr, port, want)
	}
}

func container(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "kite" {
		t.Fatalf("%s: want one container named kite, got %d", d.Name, len(cs))
	}
	return &cs[0]
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// volumeAt is the volume that holds dir in the container: the deepest mount above it.
func volumeAt(d *appsv1.Deployment, c *corev1.Container, dir string) *corev1.Volume {
	var best *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if (dir == vm.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(vm.MountPath, "/")+"/")) &&
			(best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil || best.ReadOnly {
		return nil
	}
	return volume(d, best.Name)
}

func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// configMap is the rendered ConfigMap mounted at /etc/kite in the container.
func configMap(t *testing.T, m *manifests, d *appsv1.Deployment, c *corev1.Container) *corev1.ConfigMap {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != configDir {
			continue
		}
		v := volume(d, vm.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("%s: %s is not mounted from a ConfigMap", d.Name, configDir)
		}
		cm := m.configMaps[v.ConfigMap.Name]
		if cm == nil || cm.Data["config.yaml"] == "" {
			t.Fatalf("%s: ConfigMap %s with key config.yaml is not rendered", d.Name, v.ConfigMap.Name)
		}
		if !vm.ReadOnly {
			t.Errorf("%s: mount the configuration read-only", d.Name)
		}
		return cm
	}
	t.Fatalf("%s: nothing is mounted at %s", d.Name, configDir)
	return nil
}

// TestChartRefuses: values that cannot work fail the rendering with a message that says
// what to set.
func TestChartRefuses(t *testing.T) {
	helm := helmBinary(t)
	distributed := []string{"--set", "mode=distributed", "--set", "kafka.brokers={kafka:9092}",
		"--set", "elasticsearch.urls={http://es:9200}", "--set", "storage.gcs.bucket=kite-files"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown top-level key", []string{"--set", "replicas=3"}, "additional properties 'replicas' not allowed"},
		{"unknown key in a role", []string{"--set", "worker.concurency=3"}, "additional properties 'concurency' not allowed"},
		{"unknown mode", []string{"--set", "mode=cluster"}, "mode"},
		{"distributed without brokers", []string{"--set", "mode=distributed"}, "kafka.brokers: distributed mode needs"},
		{"distributed without search", slices.Concat(distributed, []string{"--set", "elasticsearch.urls=null"}), "elasticsearch.urls: distributed mode needs"},
		{"distributed on the embedded index", slices.Concat(distributed, []string{"--set", "config.repository.type=embedded"}), "repository.type: embedded is only for standalone"},
		{"distributed on local storage", slices.Concat(distributed, []string{"--set", "storage.type=local"}), "storage.type: local cannot be shared"},
		{"gcs without a bucket", []string{"--set", "storage.type=gcs"}, "storage.gcs.bucket"},
		{"a shutdown deadline in config", []string{"--set", "config.worker.shutdown_grace=300s"}, "set shutdownGracePeriod instead"},
		{"a password in config", []string{"--set", "config.kafka.sasl.password=hunter2"}, "no passwords in values"},
		{"an API key in config", []string{"--set", "config.repository.elasticsearch.api_key=abc"}, "no passwords or API keys in values"},
		{"SASL without a Secret", []string{"--set", "kafka.sasl.mechanism=PLAIN", "--set", "kafka.sasl.username=kite"}, "kafka.sasl.existingSecret"},
		{"TLS files without a Secret", []string{"--set", "kafka.tls.enabled=true", "--set", "kafka.tls.caKey=ca.crt"}, "kafka.tls.secretName"},
		{"a PDB with both bounds", slices.Concat(distributed, []string{"--set", "api.pdb.enabled=true", "--set", "api.pdb.maxUnavailable=1"}), "api.pdb: set one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := helmTemplate(t.Context(), helm, tt.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error with %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template %v: want an error with %q, got %v", tt.args, tt.want, err)
			}
		})
	}
}
