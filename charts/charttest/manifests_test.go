package charttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// The helm that `make helm-check` installs (HELM_VERSION in the Makefile).
const helmVersion = "v3.21.4"

const (
	chartDir  = "../kite"
	release   = "kite"
	namespace = "kite-test"
	// kubeVersion is the cluster version helm template assumes: a helm built with `go
	// install` says v1.20 by default, below the chart's kubeVersion (gRPC probes).
	kubeVersion = "1.31.0"
)

// helmBinary finds the pinned helm: $KITE_HELM, or where `make helm-check` installs it
// ($KITE_CACHE, default ~/.cache/kite). Missing, the test fails on CI and is skipped
// elsewhere.
func helmBinary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("KITE_HELM")
	if path == "" {
		cache := os.Getenv("KITE_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatalf("finding helm: %v", err)
			}
			cache = filepath.Join(home, ".cache", "kite")
		}
		path = filepath.Join(cache, "bin", "helm-"+helmVersion, "helm")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("helm %s not found at %s (set KITE_HELM): run make helm-check", helmVersion, path)
		}
		t.Skipf("helm %s not found at %s: run make helm-check", helmVersion, path)
	}
	return path
}

// helmTemplate renders the chart with the extra helm arguments (-f FILE, --set K=V).
func helmTemplate(ctx context.Context, helm string, args ...string) (string, error) {
	full := append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}, args...)
	cmd := exec.CommandContext(ctx, helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %s: %w\n%s", strings.Join(full, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// manifests are the rendered objects by kind, then by name.
type manifests struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	secrets         map[string]*corev1.Secret
	claims          map[string]*corev1.PersistentVolumeClaim
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	networkPolicies map[string]*networkingv1.NetworkPolicy
	// serviceMonitors are monitoring.coreos.com/v1 objects, a CRD: no Go type here.
	serviceMonitors map[string]map[string]any
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests splits helm's output into documents and decodes each strictly into its
// kind's API type: an unknown field or an unknown kind is an error.
func decodeManifests(t testing.TB, out string) *manifests {
	t.Helper()
	m := &manifests{
		deployments:     map[string]*appsv1.Deployment{},
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		secrets:         map[string]*corev1.Secret{},
		claims:          map[string]*corev1.PersistentVolumeClaim{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		networkPolicies: map[string]*networkingv1.NetworkPolicy{},
		serviceMonitors: map[string]map[string]any{},
	}
	for _, doc := range docSeparator.Split(out, -1) {
		if isBlank(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Errorf("a rendered document is not YAML: %v\n%s", err, doc)
			continue
		}
		var err error
		switch gvk := tm.APIVersion + " " + tm.Kind; gvk {
		case "apps/v1 Deployment":
			err = decodeStrict(doc, m.deployments)
		case "v1 Service":
			err = decodeStrict(doc, m.services)
		case "v1 ConfigMap":
			err = decodeStrict(doc, m.configMaps)
		case "v1 ServiceAccount":
			err = decodeStrict(doc, m.serviceAccounts)
		case "v1 Secret":
			err = decodeStrict(doc, m.secrets)
		case "v1 PersistentVolumeClaim":
			err = decodeStrict(doc, m.claims)
		case "policy/v1 PodDisruptionBudget":
			err = decodeStrict(doc, m.pdbs)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			err = decodeStrict(doc, m.hpas)
		case "networking.k8s.io/v1 NetworkPolicy":
			err = decodeStrict(doc, m.networkPolicies)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			err = decodeServiceMonitor(doc, m.serviceMonitors)
		default:
			err = fmt.Errorf("unknown kind %q: teach charttest to decode and check it", gvk)
		}
		if err != nil {
			t.Errorf("%v\n%s", err, doc)
		}
	}
	return m
}

// isBlank reports whether a document holds only comments and blank lines.
func isBlank(doc string) bool {
	for line := range strings.Lines(doc) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// decodeStrict decodes doc into a new T (unknown fields are errors) and files it by name.
func decodeStrict[T any, PT interface {
	*T
	GetName() string
	GetNamespace() string
}](doc string, into map[string]PT) error {
	obj := PT(new(T))
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		return fmt.Errorf("decoding %T strictly: %w", obj, err)
	}
	return file(obj.GetName(), obj.GetNamespace(), obj, into)
}

func file[V any](name, ns string, obj V, into map[string]V) error {
	if name == "" {
		return errors.New("an object without a name")
	}
	if ns != namespace {
		return fmt.Errorf("%s is in namespace %q, not the release's %q", name, ns, namespace)
	}
	if _, dup := into[name]; dup {
		return fmt.Errorf("two objects of one kind are named %s", name)
	}
	into[name] = obj
	return nil
}

// serviceMonitorFields are the fields of monitoring.coreos.com/v1 ServiceMonitor the chart
// may use, by path: the CRD's schema, trimmed, so that a typo is still an error.
var serviceMonitorFields = map[string][]string{
	"":                       {"apiVersion", "kind", "metadata", "spec"},
	"metadata":               {"name", "namespace", "labels", "annotations"},
	"spec":                   {"selector", "namespaceSelector", "endpoints", "podTargetLabels", "targetLabels", "jobLabel"},
	"spec.selector":          {"matchLabels", "matchExpressions"},
	"spec.namespaceSelector": {"matchNames", "any"},
	"spec.endpoints[]":       {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings", "metricRelabelings", "tlsConfig"},
}

func decodeServiceMonitor(doc string, into map[string]map[string]any) error {
	var sm map[string]any
	if err := yaml.Unmarshal([]byte(doc), &sm); err != nil {
		return fmt.Errorf("decoding a ServiceMonitor: %w", err)
	}
	if err := checkFields("", sm); err != nil {
		return fmt.Errorf("ServiceMonitor: %w", err)
	}
	name, _ := dig(sm, "metadata", "name").(string)
	ns, _ := dig(sm, "metadata", "namespace").(string)
	return file(name, ns, sm, into)
}

// checkFields refuses the keys of v (at path) that serviceMonitorFields does not list.
func checkFields(path string, v any) error {
	switch v := v.(type) {
	case map[string]any:
		allowed, checked := serviceMonitorFields[path]
		for k, sub := range v {
			if checked && !slices.Contains(allowed, k) {
				return fmt.Errorf("unknown field %q in %q", k, path)
			}
			if err := checkFields(strings.TrimPrefix(path+"."+k, "."), sub); err != nil {
				return err
			}
		}
	case []any:
		for _, sub := range v {
			if err := checkFields(path+"[]", sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// dig walks nested maps; nil when a key is missing.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// selects reports whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// selectedDeployments are the Deployments whose pods the selector matches.
func (m *manifests) selectedDeployments(selector map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, name := range sortedKeys(m.deployments) {
		if d := m.deployments[name]; selects(selector, d.Spec.Template.Labels) {
			out = append(out, d)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
