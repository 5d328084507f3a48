// Package storagegcs is Kite's internal storage on Google Cloud Storage (DESIGN.md;
// issue 7).
package storagegcs
