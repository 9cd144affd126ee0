package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

// The members-and-rights commands: members, grant, revoke, group, restrict,
// unrestrict, policy, requests, approve, deny.
func init() {
	registered = append(registered, newMembersCommand, newGrantCommand, newRevokeCommand, newGroupCommand,
		newRestrictCommand(false), newRestrictCommand(true), newPolicyCommand, newRequestsCommand,
		newSettleCommand(true), newSettleCommand(false))
}

// folderHelp is how every rights command names its folder.
const folderHelp = `<folder> is the folder's ID, a unique end of it (4 characters or more),
or its local directory.`

// folderPath is the API path of a folder argument: a directory that exists is
// sent as its absolute path, anything else as typed (an ID or ID suffix).
func folderPath(arg string) string {
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		if abs, err := filepath.Abs(arg); err == nil {
			arg = abs
		}
	}
	return "/v1/folders/" + url.PathEscape(arg)
}

// subPath makes a --path given as a local path (absolute, or relative to the
// current directory and existing) absolute, so the daemon resolves it
// against the folder's root; anything else is a path inside the folder.
func subPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return p
}

func newMembersCommand() *cobra.Command {
	var home, path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "members <folder>",
		Short: "List the members of a folder or subfolder, their roles and where the roles come from",
		Long: `members lists every user with a role in the folder (or, with --path, in a
subfolder): the effective role, whether it is granted here or inherited (and
from which folder), the group it comes through, and the user's devices.
It also lists the folders this device's user sees by name but may not read.
` + folderHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var rep node.MembersReport
			if err := c.call("GET", folderPath(args[0])+"/members?path="+url.QueryEscape(subPath(path)), nil, &rep); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printMembers(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&path, "path", "", "a subfolder (relative to the folder, or a local path inside it)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printMembers(w io.Writer, rep node.MembersReport) {
	where := "/" + rep.Path
	fmt.Fprintf(w, "Members of %s in folder %s (manage access: %s)\n", where, rep.Folder, rep.Policy)
	if rep.Restricted {
		fmt.Fprintln(w, "This folder is restricted: it does not inherit roles from its parent.")
	}
	for _, m := range rep.Members {
		src := "granted here"
		if !m.Here {
			src = "inherited from /" + m.From
		}
		if m.Founder {
			src = "founder"
		}
		if m.Group != "" {
			src += " via group " + m.Group
		}
		you := ""
		if m.You {
			you = " (you)"
		}
		fmt.Fprintf(w, "  %-9s %s%s  %s\n", m.Role, m.User, you, src)
		for _, d := range m.Devices {
			fmt.Fprintf(w, "            device %s\n", d)
		}
	}
	for _, p := range rep.NoAccess {
		fmt.Fprintf(w, "  no access: /%s (restricted; you see its name only)\n", p)
	}
}

func newGrantCommand() *cobra.Command {
	var home, path string
	cmd := &cobra.Command{
		Use:   "grant <folder> <user|group:name> <role>",
		Short: "Give a user or group a role on a folder or subfolder (or change the role they have there)",
		Long: `grant records a grant in the folder's rights log. <user> is a user ID (or a
unique end of it) as 'meshfold members' shows it; group:<name> names a group.
<role> is viewer, editor, organizer, manager or owner. You may only grant roles
strictly below your own (owners may grant owner). Granting again changes the
role. With --path the grant applies to that subfolder and below.
` + folderHelp,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			if err := c.call("POST", folderPath(args[0])+"/grants", map[string]string{"who": args[1], "role": args[2], "path": subPath(path)}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Granted %s to %s on /%s\n", args[2], args[1], strings.Trim(path, "/"))
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&path, "path", "", "grant on this subfolder only")
	return cmd
}

func newRevokeCommand() *cobra.Command {
	var home, path string
	cmd := &cobra.Command{
		Use:   "revoke <folder> <user|group:name>",
		Short: "Remove a user's or group's grant on a folder or subfolder",
		Long: `revoke removes the grant placed on the folder (or, with --path, on that
subfolder). An inherited role is revoked where it was granted: 'meshfold
members' says where. You may only revoke roles strictly below your own.
` + folderHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			if err := c.call("POST", folderPath(args[0])+"/revoke", map[string]string{"who": args[1], "path": subPath(path)}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Revoked the grant of %s on /%s\n", args[1], strings.Trim(path, "/"))
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&path, "path", "", "revoke the grant on this subfolder")
	return cmd
}

func newGroupCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Define groups of users in a folder (grant roles to group:<name>)",
	}
	create := &cobra.Command{
		Use:   "create <folder> <name>",
		Short: "Create a group (managers)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			if err := c.call("POST", folderPath(args[0])+"/groups", map[string]string{"name": args[1]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created group %s; grant it a role with: meshfold grant %s group:%s <role>\n", args[1], args[0], args[1])
			return nil
		},
	}
	member := func(remove bool) *cobra.Command {
		verb, short := "add", "Add a user to a group"
		if remove {
			verb, short = "remove", "Remove a user from a group"
		}
		return &cobra.Command{
			Use:   verb + " <folder> <group> <user>",
			Short: short,
			Args:  cobra.ExactArgs(3),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClient(home)
				if err != nil {
					return err
				}
				body := map[string]any{"user": args[2], "remove": remove}
				if err := c.call("POST", folderPath(args[0])+"/groups/"+url.PathEscape(args[1])+"/members", body, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Group %s: %sed %s\n", args[1], strings.TrimSuffix(verb, "e"), args[2])
				return nil
			},
		}
	}
	list := &cobra.Command{
		Use:   "list <folder>",
		Short: "List the folder's groups and their members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, home, folderPath(args[0])+"/groups", asJSON, func(w io.Writer, gs []node.GroupInfo) {
				if len(gs) == 0 {
					fmt.Fprintln(w, "No groups.")
				}
				for _, g := range gs {
					fmt.Fprintf(w, "%s (%d members)\n", g.Name, len(g.Members))
					for _, u := range g.Members {
						fmt.Fprintf(w, "  %s\n", u)
					}
				}
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	for _, sub := range []*cobra.Command{create, member(false), member(true), list} {
		sub.Long = sub.Short + ".\n" + folderHelp
		addHomeFlag(sub, &home)
		cmd.AddCommand(sub)
	}
	return cmd
}

func newRestrictCommand(undo bool) func() *cobra.Command {
	return func() *cobra.Command {
		var home string
		use, short := "restrict", "Stop a subfolder inheriting roles: only members granted inside it read it"
		long := `restrict makes a subfolder private to the users and groups granted on it
(grant them with 'meshfold grant <folder> <who> <role> --path <subfolder>').
Other members still see its name, with "no access", and receive none of its
files from then on. Needs organizer rights on the parent.
`
		if undo {
			use, short = "unrestrict", "Let a restricted subfolder inherit roles from its parent again"
			long = "unrestrict lifts a restriction: the parent's members may read the subfolder again.\n"
		}
		cmd := &cobra.Command{
			Use:   use + " <folder> <subfolder>",
			Short: short,
			Long:  long + folderHelp,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClient(home)
				if err != nil {
					return err
				}
				if err := c.call("POST", folderPath(args[0])+"/restrict", map[string]any{"path": subPath(args[1]), "undo": undo}, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sed %s\n", strings.ToUpper(use[:1])+use[1:], args[1])
				return nil
			},
		}
		addHomeFlag(cmd, &home)
		return cmd
	}
}

func newPolicyCommand() *cobra.Command {
	var home string
	cmd := &cobra.Command{
		Use:   "policy <folder> <managers|owners|editors>",
		Short: `Set who may manage access (members, invitations, requests, links)`,
		Long: `policy sets the folder's "manage access" setting: managers (the default:
managers and owners), owners (owners only) or editors (every member with
write access). Only owners may set it.
` + folderHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			if err := c.call("POST", folderPath(args[0])+"/policy", map[string]string{"policy": args[1]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Manage access: %s\n", args[1])
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	return cmd
}

func newRequestsCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "requests <folder>",
		Short: "List pending access requests (settle them with approve or deny)",
		Long: `requests lists the access requests waiting for a manager: joins with an
invitation made with --approval. Any manager's device lists the same requests.
` + folderHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, home, folderPath(args[0])+"/requests", asJSON, func(w io.Writer, rs []node.RequestInfo) {
				if len(rs) == 0 {
					fmt.Fprintln(w, "No pending requests.")
				}
				for _, r := range rs {
					fmt.Fprintf(w, "%s  user %s asks for %s on /%s\n", r.ID, r.User, r.Role, r.Path)
				}
			})
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSettleCommand(approve bool) func() *cobra.Command {
	return func() *cobra.Command {
		var home, role string
		use, short := "approve", "Approve a pending access request: the requester joins"
		if !approve {
			use, short = "deny", "Deny a pending access request"
		}
		cmd := &cobra.Command{
			Use:   use + " <folder> <request>",
			Short: short,
			Long: short + `.
<request> is its ID as 'meshfold requests' shows it, or a unique end of it.
` + folderHelp,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := newClient(home)
				if err != nil {
					return err
				}
				body := map[string]any{"approve": approve, "role": role}
				if err := c.call("POST", folderPath(args[0])+"/requests/"+url.PathEscape(args[1]), body, nil); err != nil {
					return err
				}
				done := "Approved"
				if !approve {
					done = "Denied"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s request %s\n", done, args[1])
				return nil
			},
		}
		addHomeFlag(cmd, &home)
		if approve {
			cmd.Flags().StringVar(&role, "role", "", "approve with this role instead of the one asked for")
		}
		return cmd
	}
}
