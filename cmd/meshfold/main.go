// Command meshfold is the one meshfold binary: CLI, daemon, relay mode,
// simulations and benchmarks. Each subcommand lives in its own cmd_*.go file as
// a constructor, an options struct and a plain run function tests can call.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitFailure  = 1 // the command ran and failed
	exitUsage    = 2 // bad flags or arguments
	exitCanceled = 130
)

// usageError marks an error caused by how the command was called.
type usageError struct{ error }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "meshfold: interrupted")
		return exitCanceled
	case errors.As(err, new(usageError)) || isCobraUsageError(err):
		fmt.Fprintf(os.Stderr, "meshfold: %v\nRun 'meshfold --help' for usage.\n", err)
		return exitUsage
	default:
		fmt.Fprintf(os.Stderr, "meshfold: %v\n", err)
		return exitFailure
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "meshfold",
		Short: "Peer-to-peer folder sync with rights, locks, invitations and share links",
		Long: `meshfold keeps folders in sync between your devices and your collaborators'
devices directly, with no server in the middle.

Every device runs a node. This binary is the node, its command-line client,
the simulation harness and the benchmarks.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(commands()...)
	return root
}

// registered holds the subcommand constructors; each cmd_*.go adds its own in init.
var registered []func() *cobra.Command

func commands() []*cobra.Command {
	out := make([]*cobra.Command, 0, len(registered))
	for _, f := range registered {
		out = append(out, f())
	}
	return out
}

func isCobraUsageError(err error) bool {
	// cobra reports unknown commands and argument-count problems as plain errors.
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
