// Package simulations runs many meshfold nodes in one process under seeded
// faults and checks invariants after every run. See the issue tracker and
// shared/RELIABILITY.md for the catalogue it grows into.
package simulations
