package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
	"github.com/meshfold/meshfold/protocol/links"
	"github.com/meshfold/meshfold/store"
)

func init() { registered = append(registered, newGetCommand) }

func newGetCommand() *cobra.Command {
	var passwordStdin, overwrite bool
	cmd := &cobra.Command{
		Use:   "get <token> [dest]",
		Short: "Download the file behind a share link",
		Long: `get downloads the file a share-link token points to, from any online device
the token names that holds it, verifying every chunk against its hash. It
needs no running node. dest is a file name or an existing directory (default:
the current directory, under the file's own name); the file appears there
only once complete.

When the link has a password, get asks for it on the terminal, or reads it
from the first line of stdin with --password-stdin.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := links.ParseToken(args[0])
			if err != nil {
				return err
			}
			dest := "."
			if len(args) == 2 {
				dest = args[1]
			}
			var pw string
			if tok.Password {
				if pw, err = readPassword(cmd, passwordStdin, false, "Password: "); err != nil {
					return err
				}
			}
			sink := &fileSink{dest: dest, overwrite: overwrite}
			defer sink.abort()
			m, err := node.GetLink(cmd.Context(), tok, pw, sink)
			if err != nil {
				return err
			}
			if err := sink.finish(m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Saved %s (%d bytes)\n", sink.final, m.Size)
			return nil
		},
	}
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the link's password from the first line of stdin")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace an existing file at the destination")
	return cmd
}

// errExists: the destination file exists and --overwrite was not given.
var errExists = errors.New("the destination exists (use --overwrite to replace it)")

// fileSink writes a download to a temporary file beside its destination and
// renames it into place once complete and synced.
type fileSink struct {
	dest, final string
	overwrite   bool
	tmp         *os.File
}

func (s *fileSink) Begin(m links.Meta) error {
	s.abort() // a previous device failed midway: start over
	final := s.dest
	if st, err := os.Stat(s.dest); err == nil && st.IsDir() {
		final = filepath.Join(s.dest, m.Name)
	}
	if _, err := os.Lstat(final); err == nil && !s.overwrite {
		return fmt.Errorf("%s: %w", final, errExists)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(final), store.TempFilePrefix+"get-*")
	if err != nil {
		return err
	}
	s.final, s.tmp = final, tmp
	return nil
}

func (s *fileSink) Write(p []byte) (int, error) {
	if s.tmp == nil {
		return 0, errors.New("write before begin")
	}
	return s.tmp.Write(p)
}

func (s *fileSink) finish(m links.Meta) error {
	if s.tmp == nil {
		return errors.New("nothing was downloaded")
	}
	if err := s.tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := s.tmp.Sync(); err != nil {
		return err
	}
	if err := s.tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(s.tmp.Name(), s.final); err != nil {
		return err
	}
	s.tmp = nil
	return nil
}

// abort removes an unfinished download.
func (s *fileSink) abort() {
	if s.tmp != nil {
		s.tmp.Close()
		os.Remove(s.tmp.Name())
		s.tmp = nil
	}
}
