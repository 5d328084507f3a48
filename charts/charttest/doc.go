// Package charttest checks the Helm chart in charts/kite: it renders each value set of
// charts/kite/ci with the pinned helm that `make helm-check` installs, decodes every
// manifest strictly into the Kubernetes API types, runs Kite's own configuration
// validation on the rendered config for each Deployment's roles, and asserts what
// operators rely on (probes, mounts, Secrets, security context, grace periods, Services,
// autoscaling). The package holds tests only.
package charttest
