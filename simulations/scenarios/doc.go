// Package scenarios is the library of named simulation scenarios. Each is
// data (the shape of the run: devices, workload mix, nemeses, a smaller CI
// size) plus an optional workload function, named after the property it
// checks. The deterministic tier (package simulations) runs them today; the
// real-stack tier is meant to interpret the same values once the node can
// run on a simulated network.
//
// go test runs CISeeds seeds of each at its CI size; go test -long runs
// LongSeeds seeds of each at full size. meshfold sim runs any of them from
// the command line and prints the command that replays a failing seed.
package scenarios
