package main

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() {
	registered = append(registered, newLockCommand, newUnlockCommand, newLocksCommand)
}

func newLockCommand() *cobra.Command {
	var home, lease, wait string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lock <file>",
		Short: "Lock a file of a synced folder so only you can change it",
		Long: `lock asks the folder's witnesses (its declared relays, or the owners'
devices) for an exclusive lock on a file. Once a majority of them acknowledged
it the lock is granted: the file is read-only on every other user's devices,
and an edit made there anyway becomes a conflict copy instead of replacing
yours. The lock lasts while this device runs; if it goes quiet, the witnesses
end it one lease later.

If not enough witnesses are reachable the request stays pending (editing still
works) and is granted when they come back. 'meshfold unlock' ends it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			var li node.LockInfo
			if err := c.call("POST", "/v1/locks", map[string]string{"path": abs, "lease": lease, "wait": wait}, &li); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), li)
			}
			printLock(cmd.OutOrStdout(), li)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&lease, "lease", "", "how long the lock outlives this device going quiet (default 30m, at most 8h)")
	cmd.Flags().StringVar(&wait, "wait", "", "how long to wait for the witnesses before reporting the lock as pending (default 10s)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newUnlockCommand() *cobra.Command {
	var home string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "unlock <file>",
		Short: "Release your lock on a file (or, with --force, break someone else's)",
		Long: `unlock ends your lock, or your pending lock request, on a file. With
--force a manager (or owner) breaks the lock someone else holds; others are
refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			var li node.LockInfo
			if err := c.call("POST", "/v1/locks/release", map[string]any{"path": abs, "force": force}, &li); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), li)
			}
			verb := "Released"
			if !li.Mine {
				verb = "Broke " + shortUser(li.User) + "'s"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s lock on %s\n", verb, li.File)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&force, "force", false, "break someone else's lock (managers and owners)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLocksCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "locks",
		Short: "List the locks and lock requests of every synced folder",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, home, "/v1/locks", asJSON, func(w io.Writer, locks []node.LockInfo) {
				if len(locks) == 0 {
					fmt.Fprintln(w, "No locks.")
				}
				for _, li := range locks {
					printLock(w, li)
				}
			})
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printLock renders one lock as a line.
func printLock(w io.Writer, li node.LockInfo) {
	who := shortUser(li.User)
	if li.Mine {
		who = "you"
	}
	switch li.State {
	case node.LockGranted:
		fmt.Fprintf(w, "locked   %s  by %s until about %s (renewed while the holder's device runs; fence %d)\n",
			li.File, who, li.Expires.Local().Format(time.DateTime), li.Fence)
	default:
		need := fmt.Sprintf("%d of %d witnesses", li.Acks, li.Quorum)
		if li.Quorum == 0 {
			need = "no witnesses declared yet; waiting for an owner's device"
		}
		fmt.Fprintf(w, "pending  %s  by %s (%s; editing still works)\n", li.File, who, need)
	}
}

// shortUser is the short form of a user ID.
func shortUser(id string) string {
	if len(id) > 7 {
		return id[len(id)-7:]
	}
	return id
}
