package flow

import "errors"

// ErrNotFound is wrapped by the errors of flow stores when a flow, or the
// revision of a flow that was asked for, does not exist (or was deleted).
// The API layer turns it into NOT_FOUND.
var ErrNotFound = errors.New("not found")
