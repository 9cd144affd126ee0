package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newStatusCommand) }

func newStatusCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show this device and the state of every folder it syncs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var r node.StatusReport
			if err := c.call("GET", "/v1/status", nil, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Device %s\n", r.Device)
			for _, c := range r.Connections {
				if c.Relayed {
					fmt.Fprintf(w, "relayed  %s through %s (the relay limits its time and bytes)\n", c.Peer, c.Addr)
				}
			}
			if len(r.Folders) == 0 {
				fmt.Fprintln(w, "No folders yet: 'meshfold folder add <dir>' or 'meshfold join <key> <dir>'.")
			}
			for _, f := range r.Folders {
				line := fmt.Sprintf("%-8s %s  %s  peers %d", f.State, f.ID, f.Root, f.Peers)
				if f.Candidates > 0 {
					line += fmt.Sprintf(", %d changes to apply", f.Candidates)
				}
				if f.Err != "" {
					line += "  error: " + f.Err
				}
				fmt.Fprintln(w, line)
			}
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
