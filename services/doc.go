// Package services holds one package per server role (api, executor, worker,
// scheduler) and app, which wires them (DESIGN.md; issue 5).
package services
