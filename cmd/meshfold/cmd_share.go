package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() {
	registered = append(registered, newFolderCommand, newInviteCommand, newJoinCommand)
}

func newFolderCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "folder",
		Short: "Manage the folders this device syncs",
	}
	var home, name string
	var asJSON bool
	add := &cobra.Command{
		Use:   "add <dir>",
		Short: "Share a local directory as a new folder (this device's user becomes its owner)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			var out struct {
				ID string `json:"id"`
			}
			if err := c.call("POST", "/v1/folders", map[string]string{"path": abs, "name": name}, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Sharing %s as folder %s\nInvite others with: meshfold invite %s --role editor\n", abs, out.ID, out.ID)
			return nil
		},
	}
	addHomeFlag(add, &home)
	add.Flags().StringVar(&name, "name", "", "the folder's name (default: the directory's name)")
	add.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(add)
	for _, sub := range folderSubcommands {
		cmd.AddCommand(sub())
	}
	return cmd
}

func newInviteCommand() *cobra.Command {
	var home, role, path, expires string
	var uses uint32
	var approval, asJSON bool
	cmd := &cobra.Command{
		Use:   "invite <folder>",
		Short: "Create an invitation key that lets someone join a folder",
		Long: `invite records an invitation in the folder's log and prints its key: a
single string to send to the person you invite, who runs
'meshfold join <key> <dir>'. Only the key's public half is in the log.
With --approval, or for a role you may not grant yourself, joins wait as
access requests that a manager settles ('meshfold requests', 'approve', 'deny').
On a terminal a QR code of the key is printed under it (not when piped or
with --json). The folder is named by its ID, a unique ID suffix or its
local directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			f, err := c.resolveFolder(args[0])
			if err != nil {
				return err
			}
			var out struct {
				Key      string `json:"key"`
				Approval bool   `json:"approval"`
			}
			req := map[string]any{"role": role, "path": path, "uses": uses, "expires": expires, "approval": approval}
			if err := c.call("POST", "/v1/folders/"+f.ID+"/invites", req, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Key)
			if isTerminal(cmd.OutOrStdout()) {
				printQR(cmd.OutOrStdout(), out.Key) // only on a terminal: a pipe gets the key alone
			}
			if out.Approval && !approval {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: you may not grant %s directly: joins with this key wait for the approval of a manager who may ('meshfold requests')\n", role)
			}
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&role, "role", "editor", "viewer, editor, organizer or manager")
	cmd.Flags().StringVar(&path, "path", "", "give access to this subfolder only")
	cmd.Flags().Uint32Var(&uses, "uses", 1, "how many devices may join with the key")
	cmd.Flags().StringVar(&expires, "expires", "7d", "how long the key stays valid (e.g. 90m, 12h, 7d; \"\" for never)")
	cmd.Flags().BoolVar(&approval, "approval", false, "joins wait for a manager's approval")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, sub := range inviteSubcommands {
		cmd.AddCommand(sub())
	}
	return cmd
}

func newJoinCommand() *cobra.Command {
	var home string
	var wait time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "join <key> <dir>",
		Short: "Join a folder with an invitation key and sync it into a local directory",
		Long: `join uses an invitation key: it reaches a member at the addresses in the
key, proves the invitation and starts syncing the folder into <dir>.

An invitation made with --approval makes the join an access request: join
returns at once saying it is pending, and the daemon keeps the folder and
starts syncing by itself as soon as a manager approves ('meshfold requests',
'meshfold approve' on their device). 'meshfold status' shows the request as
pending or denied. With --wait, join instead waits for the answer and fails
(exit 1) if the request is denied.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			var out joinAnswer
			if err := c.call("POST", "/v1/join", map[string]string{"key": args[0], "path": abs}, &out); err != nil {
				return err
			}
			if out.Access == node.AccessPending && wait > 0 {
				if out, err = waitForApproval(cmd.Context(), c, out, wait); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printJoin(cmd.OutOrStdout(), out, abs)
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().DurationVar(&wait, "wait", 0, "with an invitation that needs approval: wait this long for a manager's answer (e.g. 10m)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
