package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newLinkCommand) }

// errNeedPassword: a password is needed and there is no terminal to ask on.
var errNeedPassword = errors.New("a password is needed: type it on a terminal or pass it with --password-stdin")

// readPassword reads a password: the first line of stdin with fromStdin,
// else from the terminal without echo (twice when confirm).
func readPassword(cmd *cobra.Command, fromStdin, confirm bool, prompt string) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on stdin")
		}
		return pw, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errNeedPassword
	}
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", err
	}
	if len(pw) == 0 {
		return "", errors.New("empty password")
	}
	if confirm {
		fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", err
		}
		if string(again) != string(pw) {
			return "", errors.New("the passwords differ")
		}
	}
	return string(pw), nil
}

func newLinkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Create and manage share links to single files",
		Long: `A share link lets anyone holding its token download one file with
'meshfold get <token>', from any online device that holds the file, without
joining the folder. Links can expire, need a password and allow a limited
number of downloads; 'link suspend|resume|revoke' change them later.`,
	}
	cmd.AddCommand(newLinkCreateCommand(), newLinkListCommand(),
		newLinkStateCommand("suspend", "Suspend a link: downloads are refused until it is resumed"),
		newLinkStateCommand("resume", "Resume a suspended link"),
		newLinkStateCommand("revoke", "Revoke a link for good"))
	return cmd
}

func newLinkCreateCommand() *cobra.Command {
	var home, expires string
	var password, passwordStdin, asJSON bool
	var maxDownloads uint32
	cmd := &cobra.Command{
		Use:   "create <file>",
		Short: "Create a share link to a file and print its token",
		Long: `create records a share link in the folder's log and prints its token: one
string to send to whoever should download the file ('meshfold get <token>').
The token carries the link's secret; the log holds only a salted Argon2id
verifier of the secret and the password.

A file outside every synced folder is first copied into your "My shares"
folder (in the node home), so it can be served and synced to your devices.`,
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
			var pw string
			if password || passwordStdin {
				if pw, err = readPassword(cmd, passwordStdin, true, "Password for the link: "); err != nil {
					return err
				}
			}
			var li node.LinkInfo
			req := map[string]any{"path": abs, "expires": expires, "password": pw, "max_downloads": maxDownloads}
			if err := c.call("POST", "/v1/links", req, &li); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), li)
			}
			fmt.Fprintln(cmd.OutOrStdout(), li.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "Link %s to %s (%s)\n", shortLink(li.ID), li.File, linkTerms(li))
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().StringVar(&expires, "expires", "", "how long the link works (e.g. 12h, 7d; default never)")
	cmd.Flags().BoolVar(&password, "password", false, "ask for a password the downloader must give")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	cmd.Flags().Uint32Var(&maxDownloads, "max-downloads", 0, "how many downloads the link allows (0: unlimited)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLinkListCommand() *cobra.Command {
	var home string
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: `List the share links you made ("My shares"): file, state, downloads, expiry`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var list []node.LinkInfo
			q := ""
			if all {
				q = "?all=true"
			}
			if err := c.call("GET", "/v1/links"+q, nil, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			w := cmd.OutOrStdout()
			if len(list) == 0 {
				fmt.Fprintln(w, "No share links. Create one with 'meshfold link create <file>'.")
			}
			for _, li := range list {
				fmt.Fprintf(w, "%-10s %-9s %s  (%s)\n", shortLink(li.ID), li.State, li.File, linkTerms(li))
			}
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&all, "all", false, "every link of the folders this device syncs, not only yours")
	return cmd
}

func newLinkStateCommand(action, short string) *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   action + " <link>",
		Short: short,
		Long:  short + ".\n\n<link> is a link's ID (as 'meshfold link list' shows it: 8 or more characters of it do), or its token.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			var li node.LinkInfo
			if err := c.call("POST", "/v1/links/"+args[0]+"/"+action, nil, &li); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), li)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Link %s to %s is %s\n", shortLink(li.ID), li.File, li.State)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// shortLink is the form of a link ID the list shows (a suffix, unique in practice).
func shortLink(id string) string {
	if len(id) > 10 {
		return id[len(id)-10:]
	}
	return id
}

func linkTerms(li node.LinkInfo) string {
	var parts []string
	if li.DownloadLimit > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d downloads left", li.DownloadLimit-min(li.Downloads, li.DownloadLimit), li.DownloadLimit))
	} else {
		parts = append(parts, fmt.Sprintf("%d downloads", li.Downloads))
	}
	if !li.ExpiresAt.IsZero() {
		parts = append(parts, "expires "+li.ExpiresAt.Local().Format(time.DateTime))
	}
	if li.Password {
		parts = append(parts, "password")
	}
	return strings.Join(parts, ", ")
}
