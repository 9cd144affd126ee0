package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

func init() {
	registered = append(registered, newPauseCommand, newResumeCommand)
	folderSubcommands = append(folderSubcommands, newFolderListCommand, newFolderRemoveCommand)
}

// folderSubcommands are added under 'meshfold folder' (cmd_share.go).
var folderSubcommands []func() *cobra.Command

const folderNameHelp = `A folder is named by its ID, by a suffix of its ID no other folder shares,
or by its local directory.`

// listFolders asks the daemon for every folder it syncs.
func (c *client) listFolders() ([]node.FolderReport, error) {
	var fs []node.FolderReport
	return fs, c.call("GET", "/v1/folders", nil, &fs)
}

// resolveFolder finds the folder the user names (folderNameHelp).
func (c *client) resolveFolder(name string) (node.FolderReport, error) {
	fs, err := c.listFolders()
	if err != nil {
		return node.FolderReport{}, err
	}
	refs := make([]node.FolderRef, len(fs))
	for i, f := range fs {
		refs[i] = node.FolderRef{ID: f.ID, Root: f.Root}
	}
	looksLikePath := strings.ContainsRune(name, filepath.Separator) || name == "." || name == ".." || strings.HasPrefix(name, "~")
	if !looksLikePath {
		if ref, err := node.ResolveFolder(refs, name); err == nil || errors.Is(err, node.ErrAmbiguousFolder) {
			return find(fs, ref.ID), err
		}
		if st, err := os.Stat(name); err != nil || !st.IsDir() {
			return node.FolderReport{}, fmt.Errorf("%w %q (see 'meshfold folder list')", node.ErrUnknownFolder, name)
		}
	}
	p, err := expandHome(name)
	if err != nil {
		return node.FolderReport{}, err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return node.FolderReport{}, err
	}
	ref, err := node.ResolveFolder(refs, abs)
	if err != nil {
		return node.FolderReport{}, fmt.Errorf("%s: %w", abs, node.ErrUnknownFolder)
	}
	return find(fs, ref.ID), nil
}

func find(fs []node.FolderReport, id string) node.FolderReport {
	for _, f := range fs {
		if f.ID == id {
			return f
		}
	}
	return node.FolderReport{}
}

type folderAnswer struct {
	ID   string `json:"id"`
	Root string `json:"root"`
}

func newPauseCommand() *cobra.Command { return newSwitchCommand("pause") }

func newResumeCommand() *cobra.Command { return newSwitchCommand("resume") }

// newSwitchCommand builds 'meshfold pause' and 'meshfold resume'.
func newSwitchCommand(verb string) *cobra.Command {
	var home string
	var all, asJSON bool
	short := map[string]string{
		"pause":  "Pause syncing one folder, or every folder with --all",
		"resume": "Resume syncing one folder, or every folder with --all",
	}[verb]
	long := map[string]string{
		"pause": `pause stops a folder from syncing: it neither sends nor receives changes
until 'meshfold resume'. Local changes made meanwhile are picked up on resume.
With --all it turns on the global switch: every folder pauses, folders added
later start paused. Pauses survive a daemon restart.`,
		"resume": `resume undoes 'meshfold pause' for one folder. With --all it turns the
global switch off and resumes every folder, including those paused one by one.`,
	}[verb] + "\n\n" + folderNameHelp
	cmd := &cobra.Command{
		Use:   verb + " [<folder> | --all]",
		Short: short,
		Long:  long,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return usageError{fmt.Errorf("%s needs a folder or --all (not both)", verb)}
			}
			c, err := newClient(home)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if all {
				var out map[string]bool
				if err := c.call("POST", "/v1/"+verb, nil, &out); err != nil {
					return err
				}
				if asJSON {
					return printJSON(w, out)
				}
				fmt.Fprintf(w, "All folders %sd.\n", verb)
				return nil
			}
			f, err := c.resolveFolder(args[0])
			if err != nil {
				return err
			}
			var out folderAnswer
			if err := c.call("POST", "/v1/folders/"+url.PathEscape(f.ID)+"/"+verb, nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(w, out)
			}
			fmt.Fprintf(w, "Folder %s (%s) %sd.\n", out.ID, out.Root, verb)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&all, "all", false, "every folder (the global switch)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFolderListCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the folders this device syncs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(home)
			if err != nil {
				return err
			}
			fs, err := c.listFolders()
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), fs)
			}
			printFolderList(cmd.OutOrStdout(), fs)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printFolderList(w io.Writer, fs []node.FolderReport) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "No folders yet: 'meshfold folder add <dir>' or 'meshfold join <key> <dir>'.")
		return
	}
	for _, f := range fs {
		fmt.Fprintf(w, "%s  %-8s  %s\n", f.ID, f.State, f.Root)
	}
}

func newFolderRemoveCommand() *cobra.Command {
	var home string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "remove <folder>",
		Short: "Stop syncing a folder for good, keeping its files on disk",
		Long: `remove stops syncing a folder on this device and forgets it: it leaves the
home's folder list and its index and rights log are deleted from this device.
Every file in the directory stays as it is; other devices keep syncing.

` + folderNameHelp,
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
			var out folderAnswer
			if err := c.call("DELETE", "/v1/folders/"+url.PathEscape(f.ID), nil, &out); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Stopped syncing %s (folder %s); its files stay on disk.\n", out.Root, out.ID)
			return nil
		},
	}
	addHomeFlag(cmd, &home)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
