package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/node"
)

// errNoDaemon: no meshfold daemon runs on this home.
var errNoDaemon = errors.New("no meshfold daemon is running for this home; start one with 'meshfold run'")

// client talks to the running daemon's control API.
type client struct {
	info node.APIInfo
	http *http.Client
}

// addHomeFlag adds --home to a command that talks to the daemon.
func addHomeFlag(cmd *cobra.Command, home *string) {
	cmd.Flags().StringVar(home, "home", "", "node home directory (default $XDG_DATA_HOME/meshfold or ~/.local/share/meshfold)")
}

// newClient finds the daemon of home through its API file.
func newClient(home string) (*client, error) {
	if home == "" {
		var err error
		if home, err = defaultHome(); err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(filepath.Join(home, node.APIFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoDaemon
	}
	if err != nil {
		return nil, err
	}
	var info node.APIInfo
	if err := json.Unmarshal(raw, &info); err != nil || info.Addr == "" {
		return nil, fmt.Errorf("%s is corrupt; restart the daemon", node.APIFile)
	}
	return &client{info: info, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// call sends a request with in as JSON body (nil for none) and decodes the
// answer into out.
func (c *client) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+c.info.Addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.info.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoDaemon, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e node.APIErrorBody
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// printJSON writes v as indented JSON, for --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// show fetches path from the daemon of home and prints it: as JSON with
// asJSON, else with render (the shape of every read command).
func show[T any](cmd *cobra.Command, home, path string, asJSON bool, render func(io.Writer, T)) error {
	c, err := newClient(home)
	if err != nil {
		return err
	}
	var v T
	if err := c.call("GET", path, nil, &v); err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), v)
	}
	render(cmd.OutOrStdout(), v)
	return nil
}
