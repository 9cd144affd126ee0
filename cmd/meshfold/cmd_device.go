package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
)

func init() { registered = append(registered, newDeviceCommand) }

func newDeviceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "Link a second device of your user (it then syncs your folders with your rights)",
		Long: `Linking a new device takes three steps and copies no secret:

  1. on the new device, start 'meshfold run' and read its device ID in
     'meshfold status';
  2. on a device that holds your user key (the first one), run
     'meshfold device add <new device ID>': it certifies the new device in
     every folder you sync and prints a device key;
  3. on the new device, run 'meshfold device link <device key> <dir>': it acts
     for your user from then on and syncs each folder into <dir>/<name>.

The key only works for the device it names. A linked device cannot add
further devices; add them from the first one. Link a fresh device: one that
already shares folders of its own is refused.`,
	}
	var home string
	var asJSON bool
	add := &cobra.Command{
		Use:   "add <device ID>",
		Short: "Certify a new device of your user and print the key it links with",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var out struct {
				Key string `json:"key"`
			}
			if err := c.call("POST", "/v1/devices", map[string]string{"device": args[0]}, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Key)
			return nil
		},
	}
	link := &cobra.Command{
		Use:   "link <device key> <dir>",
		Short: "Make this device act for the user in the key and sync that user's folders under <dir>",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			var out struct {
				User    string              `json:"user"`
				Folders []map[string]string `json:"folders"`
			}
			if err := c.call("POST", "/v1/devices/link", map[string]string{"key": args[0], "path": abs}, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "This device now acts for user %s\n", out.User)
			for _, f := range out.Folders {
				fmt.Fprintf(cmd.OutOrStdout(), "Syncing folder %s into %s\n", f["id"], f["root"])
			}
			return nil
		},
	}
	for _, sub := range []*cobra.Command{add, link} {
		sub.Long = sub.Short + ".\n\n" + cmd.Long
		addHomeFlag(sub, &home)
		sub.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		cmd.AddCommand(sub)
	}
	return cmd
}
