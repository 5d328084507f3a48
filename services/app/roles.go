package app

import (
	"fmt"
	"slices"
	"strings"
)

// Role names, as `kite server` takes them.
const (
	RoleAPI       = "api"
	RoleExecutor  = "executor"
	RoleWorker    = "worker"
	RoleScheduler = "scheduler"
	RoleIndexer   = "indexer"
	// Standalone is every role with the embedded broker.
	Standalone = "standalone"
)

// roleOrder is the start order; roles stop in reverse. The executor comes
// before the workers so that results have a consumer, and the API last so
// that it accepts requests once everything behind it runs.
var roleOrder = []string{RoleExecutor, RoleWorker, RoleScheduler, RoleIndexer, RoleAPI}

// Roles is the set of roles one process runs.
type Roles struct {
	list []string
	// Standalone adds the embedded broker and the embedded repository
	// (and, with issue 7, local storage).
	Standalone bool
}

// ParseRoles reads "standalone" or a comma list of roles.
func ParseRoles(s string) (Roles, error) {
	if strings.TrimSpace(s) == Standalone {
		return Roles{list: []string{RoleExecutor, RoleWorker, RoleScheduler, RoleIndexer, RoleAPI}, Standalone: true}, nil
	}
	var r Roles
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case RoleAPI, RoleExecutor, RoleWorker, RoleScheduler, RoleIndexer:
		case Standalone:
			return r, fmt.Errorf("standalone runs every role: it cannot be combined with others")
		case "":
			return r, fmt.Errorf("empty role in %q: give standalone or a comma list of %s", s, strings.Join(roleOrder, ","))
		default:
			return r, fmt.Errorf("unknown role %q: give standalone or a comma list of %s", name, strings.Join(roleOrder, ","))
		}
		if !slices.Contains(r.list, name) {
			r.list = append(r.list, name)
		}
	}
	slices.SortFunc(r.list, func(a, b string) int { return slices.Index(roleOrder, a) - slices.Index(roleOrder, b) })
	return r, nil
}

// Has reports whether the set holds the role.
func (r Roles) Has(role string) bool { return slices.Contains(r.list, role) }

// List returns the roles in start order.
func (r Roles) List() []string { return slices.Clone(r.list) }

func (r Roles) String() string {
	if r.Standalone {
		return Standalone
	}
	return strings.Join(r.list, ",")
}
