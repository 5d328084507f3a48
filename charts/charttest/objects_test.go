package charttest

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kiteflow/kite/services/app"
)

// checkAPIService: the Service named after the release reaches the pods serving the API on
// grpc 7777 and http 8080.
func checkAPIService(t *testing.T, m *manifests) {
	t.Helper()
	svc := m.services[release]
	if svc == nil {
		t.Fatalf("no API Service %s", release)
	}
	want := map[string]int32{"grpc": 7777, "http": 8080}
	got := map[string]int32{}
	for _, p := range svc.Spec.Ports {
		got[p.Name] = p.Port
		if p.TargetPort != intstr.FromString(p.Name) {
			t.Errorf("Service %s: port %s targets %v, want the containerPort named %s", svc.Name, p.Name, p.TargetPort.String(), p.Name)
		}
	}
	if len(got) != len(want) || got["grpc"] != want["grpc"] || got["http"] != want["http"] {
		t.Errorf("Service %s: ports %v, want %v", svc.Name, got, want)
	}
	ds := m.selectedDeployments(svc.Spec.Selector)
	if len(ds) != 1 {
		t.Fatalf("Service %s selects %d Deployments, want the one serving the API", svc.Name, len(ds))
	}
	role := ds[0].Labels["app.kubernetes.io/component"]
	if roles, err := app.ParseRoles(role); err != nil || !roles.Has(app.RoleAPI) {
		t.Errorf("Service %s selects %s, which does not serve the API", svc.Name, ds[0].Name)
	}
}

// checkServices: every Service selects pods, and its target ports are theirs.
func checkServices(t *testing.T, m *manifests) {
	t.Helper()
	for _, name := range sortedKeys(m.services) {
		svc := m.services[name]
		ds := m.selectedDeployments(svc.Spec.Selector)
		if len(ds) == 0 {
			t.Errorf("Service %s selects no pods", name)
		}
		for _, d := range ds {
			for _, p := range svc.Spec.Ports {
				if !hasPort(d, p.TargetPort) {
					t.Errorf("Service %s: port %s targets %s, which %s does not declare", name, p.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
}

// checkHPAs: one HPA per autoscaled role, targeting its Deployment.
func checkHPAs(t *testing.T, m *manifests, autoscaled []string) {
	t.Helper()
	var targets []string
	for _, name := range sortedKeys(m.hpas) {
		h := m.hpas[name]
		ref := h.Spec.ScaleTargetRef
		d := m.deployments[ref.Name]
		switch {
		case ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || d == nil:
			t.Errorf("HPA %s targets %s %s %s, not a rendered Deployment", name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		case h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas:
			t.Errorf("HPA %s: replicas from %v to %d", name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		case len(h.Spec.Metrics) == 0:
			t.Errorf("HPA %s: no metrics", name)
		}
		c := container(t, d)
		for _, metric := range h.Spec.Metrics {
			if metric.Resource == nil {
				continue
			}
			if _, ok := c.Resources.Requests[metric.Resource.Name]; !ok {
				t.Errorf("HPA %s scales on %s utilization, which %s does not request", name, metric.Resource.Name, d.Name)
			}
		}
		targets = append(targets, d.Labels["app.kubernetes.io/component"])
	}
	slices.Sort(targets)
	want := slices.Sorted(slices.Values(autoscaled))
	if !slices.Equal(targets, want) {
		t.Errorf("HPAs target %v, want %v", targets, want)
	}
}

// checkPDBs: each budget selects one role's pods and sets one bound.
func checkPDBs(t *testing.T, m *manifests) {
	t.Helper()
	for _, name := range sortedKeys(m.pdbs) {
		p := m.pdbs[name]
		if p.Spec.Selector == nil || len(m.selectedDeployments(p.Spec.Selector.MatchLabels)) != 1 {
			t.Errorf("PodDisruptionBudget %s must select the pods of one Deployment", name)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget %s: set one of minAvailable and maxUnavailable", name)
		}
	}
}

// checkNetworkPolicies: the policy covers every pod and lets in the API, metrics and health
// ports.
func checkNetworkPolicies(t *testing.T, m *manifests) {
	t.Helper()
	for _, name := range sortedKeys(m.networkPolicies) {
		np := m.networkPolicies[name]
		if got := len(m.selectedDeployments(np.Spec.PodSelector.MatchLabels)); got != len(m.deployments) {
			t.Errorf("NetworkPolicy %s selects %d Deployments of %d", name, got, len(m.deployments))
		}
		open := map[string]bool{}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port != nil {
					open[p.Port.String()] = true
				}
			}
		}
		for _, port := range []string{"grpc", "http", "metrics", "health"} {
			if !open[port] {
				t.Errorf("NetworkPolicy %s lets nothing in on port %s", name, port)
			}
		}
	}
}

// checkServiceMonitors: each selects Services of the release, and each endpoint's port is
// a port of one of them.
func checkServiceMonitors(t *testing.T, m *manifests) {
	t.Helper()
	for _, name := range sortedKeys(m.serviceMonitors) {
		sm := m.serviceMonitors[name]
		if dig(sm, "apiVersion") != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor %s: apiVersion %v", name, dig(sm, "apiVersion"))
		}
		names, _ := dig(sm, "spec", "namespaceSelector", "matchNames").([]any)
		if !slices.Contains(names, any(namespace)) {
			t.Errorf("ServiceMonitor %s does not look in the release's namespace: %v", name, names)
		}
		selector := map[string]string{}
		matchLabels, _ := dig(sm, "spec", "selector", "matchLabels").(map[string]any)
		for k, v := range matchLabels {
			selector[k], _ = v.(string)
		}
		ports := map[string]bool{}
		var selected []string
		for _, svcName := range sortedKeys(m.services) {
			svc := m.services[svcName]
			if !selects(selector, svc.Labels) {
				continue
			}
			selected = append(selected, svcName)
			for _, p := range svc.Spec.Ports {
				ports[p.Name] = true
			}
		}
		// Every role's pods are scraped: the API's http port and the others' metrics port.
		for _, d := range m.deployments {
			if !slices.ContainsFunc(selected, func(s string) bool { return selects(m.services[s].Spec.Selector, d.Spec.Template.Labels) }) {
				t.Errorf("ServiceMonitor %s reaches no Service of %s: its metrics are not scraped", name, d.Name)
			}
		}
		endpoints, _ := dig(sm, "spec", "endpoints").([]any)
		if len(endpoints) == 0 {
			t.Errorf("ServiceMonitor %s has no endpoints", name)
		}
		for _, e := range endpoints {
			port, _ := dig(e, "port").(string)
			path, _ := dig(e, "path").(string)
			if !ports[port] || path != "/metrics" {
				t.Errorf("ServiceMonitor %s: endpoint port %q path %q: no selected Service (%s) has that port, or the path is not /metrics",
					name, port, path, strings.Join(selected, ", "))
			}
		}
	}
}

func hasPort(d *appsv1.Deployment, port intstr.IntOrString) bool {
	for _, c := range d.Spec.Template.Spec.Containers {
		if slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal)
		}) {
			return true
		}
	}
	return false
}
