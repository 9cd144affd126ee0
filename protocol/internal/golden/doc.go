// Package golden compares encoded messages with the wire vectors kept in a
// test package's testdata/ directory, and rewrites them under -update.
// Vectors are hex, one frame per file, so diffs are reviewable.
//
// Test support only: imported by protocol/... tests, never by production code.
package golden
