package api

import "go.uber.org/zap"

// Log field constructors: the keys are fixed, so that every line about one
// execution or request can be found with the same query.

func fExecutionID(id string) zap.Field { return zap.String("execution_id", id) }
func fNamespace(ns string) zap.Field   { return zap.String("namespace", ns) }
func fFlowID(id string) zap.Field      { return zap.String("flow_id", id) }
func fMethod(m string) zap.Field       { return zap.String("method", m) }
