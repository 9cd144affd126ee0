package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshfold/meshfold/node"
)

// errRequestDenied: a manager denied the access request a join made.
var errRequestDenied = errors.New("a manager of the folder denied your access request")

// joinPoll is how often 'join --wait' asks the daemon about a pending request.
const joinPoll = 250 * time.Millisecond

// joinAnswer is the answer of POST /v1/join.
type joinAnswer struct {
	ID      string `json:"id"`
	Access  string `json:"access,omitempty"`  // "pending" when a manager must approve
	Request string `json:"request,omitempty"` // the access request's ID
}

func printJoin(w io.Writer, out joinAnswer, dir string) error {
	switch out.Access {
	case node.AccessPending:
		fmt.Fprintf(w, "Pending: your access request %s for folder %s waits for a manager's approval.\n"+
			"Nothing syncs until then; the daemon starts syncing into %s by itself once approved.\n"+
			"'meshfold status' shows the request.\n", out.Request, out.ID, dir)
	default:
		fmt.Fprintf(w, "Joined folder %s; syncing into %s\n", out.ID, dir)
	}
	return nil
}

// waitForApproval polls the daemon's status until the folder's request is
// approved (the device became a member) or denied, or wait runs out.
func waitForApproval(ctx context.Context, c *client, out joinAnswer, wait time.Duration) (joinAnswer, error) {
	deadline := time.Now().Add(wait)
	t := time.NewTicker(joinPoll)
	defer t.Stop()
	for {
		var r node.StatusReport
		if err := c.call("GET", "/v1/status", nil, &r); err != nil {
			return out, err
		}
		for _, f := range r.Folders {
			if f.ID != out.ID {
				continue
			}
			switch f.Access {
			case node.AccessMember:
				out.Access = ""
				return out, nil
			case node.AccessDenied:
				return out, fmt.Errorf("request %s: %w", out.Request, errRequestDenied)
			}
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("request %s is still pending after %s; the daemon keeps waiting ('meshfold status')", out.Request, wait)
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-t.C:
		}
	}
}
