package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { inviteSubcommands = append(inviteSubcommands, newInviteRevokeCommand) }

// inviteSubcommands are added under 'meshfold invite' (cmd_share.go).
var inviteSubcommands []func() *cobra.Command

func newInviteRevokeCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke <key>",
		Short: "Revoke an invitation key so nobody can join with it any more",
		Long: `invite revoke records in the folder's log that the invitation is over: from
then on a join with the key is refused ("the invitation is unknown, revoked or
used up"). Devices that already joined with it stay members.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var out map[string]string
			if err := c.call("POST", "/v1/invites/revoke", map[string]string{"key": args[0]}, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked the invitation to folder %s.\n", out["folder"])
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
