package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newWitnessesCommand) }

func newWitnessesCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "witnesses <folder> [device-id...]",
		Short: "List or declare the devices that witness a folder's locks",
		Long: `witnesses lists a folder's lock witnesses, or, given device IDs, declares
them (folder owners only). A lock is granted once a majority of the witnesses
acknowledged it; while too few of them are reachable a lock request stays
pending and everyone can still edit.

Until an owner declares witnesses, the owners' devices are. An always-on relay
that is a device of your user ('meshfold device add' / 'meshfold device link')
makes a good witness:
  meshfold witnesses ~/Shared <relay device ID>
A device is named by its full ID or a unique suffix of it (6 characters or
more); it must be a device of the folder already.

` + folderNameHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			f, err := c.resolveFolder(args[0])
			if err != nil {
				return err
			}
			var rep node.WitnessReport
			path := "/v1/folders/" + url.PathEscape(f.ID) + "/witnesses"
			if len(args) == 1 {
				err = c.call("GET", path, nil, &rep)
			} else {
				err = c.call("POST", path, map[string]any{"devices": args[1:]}, &rep)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			out := cmd.OutOrStdout()
			if len(rep.Witnesses) == 0 {
				fmt.Fprintln(out, "No witnesses declared: the owners' devices witness locks.")
				return nil
			}
			fmt.Fprintf(out, "Lock witnesses of %s (a lock needs %d of %d):\n", f.Root, rep.Quorum, len(rep.Witnesses))
			for _, w := range rep.Witnesses {
				me := ""
				if w.Me {
					me = "  (this device)"
				}
				fmt.Fprintf(out, "  %s%s\n", w.Device, me)
			}
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
