package main

import (
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newStatusCommand) }

func newStatusCommand() *cobra.Command {
	var home string
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "status [<path>]",
		Short: "Show this device and the state of every folder it syncs, or of one path",
		Long: `status shows each folder this device syncs: synced, syncing (with the files
and bytes left), conflict (how many conflict copies, and their names), paused,
or error (with the reason). On a terminal the states have colours and symbols
(NO_COLOR turns colours off).

With a path (a file or directory inside a synced folder) it shows the state of
that path and everything below it.

With --watch it stays on and follows the daemon's event stream: live progress
bars while folders sync on a terminal, one line per event otherwise. Ctrl-C
ends it.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if watch {
				if len(args) > 0 {
					return usageError{fmt.Errorf("--watch follows every folder; it takes no path")}
				}
				return watchStatus(cmd.Context(), c, w, asJSON)
			}
			if len(args) == 1 {
				abs, err := filepath.Abs(args[0])
				if err != nil {
					return err
				}
				return pathStatus(c, cmd, abs, asJSON)
			}
			var r node.StatusReport
			if err := c.call("GET", "/v1/status", nil, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(w, r)
			}
			renderStatus(w, r, useColor(w))
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with --watch: one event per line)")
	cmd.Flags().BoolVar(&watch, "watch", false, "follow changes live until Ctrl-C")
	return cmd
}

func pathStatus(c *client, cmd *cobra.Command, abs string, asJSON bool) error {
	fs, err := c.listFolders()
	if err != nil {
		return err
	}
	refs := make([]node.FolderRef, len(fs))
	for i, f := range fs {
		refs[i] = node.FolderRef{ID: f.ID, Root: f.Root}
	}
	ref, rel, err := node.FolderOf(refs, abs)
	if err != nil {
		return err
	}
	var p node.PathReport
	if err := c.call("GET", "/v1/folders/"+url.PathEscape(ref.ID)+"/path?path="+url.QueryEscape(rel), nil, &p); err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if asJSON {
		return printJSON(w, p)
	}
	renderPath(w, abs, p, useColor(w))
	return nil
}
