package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/node"
)

func init() { registered = append(registered, newDemoCommand) }

// demoStepTimeout bounds every wait of the demo: a step that does not happen
// in that time fails the demo with what was expected.
const demoStepTimeout = 90 * time.Second

type demoOptions struct {
	dir  string // where the homes and folders go; "" is a new temporary directory
	keep bool   // leave the directory behind
}

func newDemoCommand() *cobra.Command {
	var opts demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch meshfold work: three devices share a folder on this machine",
		Long: `demo starts three meshfold nodes in this process, each with its own temporary
home and folder, on the loopback interface (nothing leaves this machine):

  Alice  the folder's owner
  Bob    an editor, invited by Alice
  Carol  a viewer, invited by Alice

and narrates what happens as they share a folder: the first sync, an edit
spreading, two concurrent edits becoming a conflict copy, a lock making a file
read-only on the other devices, and a viewer's edit that is not accepted.
Every step waits for the real outcome on disk (at most 90 s) and the demo
fails loudly if it does not come. It takes a few seconds; --keep leaves the
homes and folders behind to look at.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&opts.dir, "dir", "", "directory for the demo's homes and folders (default: a new temporary directory)")
	cmd.Flags().BoolVar(&opts.keep, "keep", false, "keep the homes and folders when the demo ends")
	return cmd
}

// demoDevice is one of the demo's three nodes.
type demoDevice struct {
	name string
	n    *node.Node
	root string // its copy of the shared folder
}

func (d *demoDevice) file(rel string) string { return filepath.Join(d.root, rel) }

func (d *demoDevice) read(rel string) string {
	b, err := os.ReadFile(d.file(rel))
	if err != nil {
		return ""
	}
	return string(b)
}

func runDemo(ctx context.Context, opts demoOptions, out io.Writer) (err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir := opts.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "meshfold-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if opts.keep {
		defer fmt.Fprintf(out, "\nThe homes and folders are kept in %s.\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	start := time.Now()
	wait := func(what string, cond func() bool) error {
		deadline := time.Now().Add(demoStepTimeout)
		t0 := time.Now()
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("demo: %s did not happen within %s", what, demoStepTimeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		say("    ✓ %s (%d ms)", what, time.Since(t0).Milliseconds())
		return nil
	}

	say("meshfold demo: three devices on this machine (homes in %s)\n", dir)
	var devs []*demoDevice
	defer func() {
		for _, d := range devs {
			d.n.Close()
		}
	}()
	for _, name := range []string{"Alice", "Bob", "Carol"} {
		n, err := node.Open(node.Config{
			Home:        filepath.Join(dir, strings.ToLower(name)+"-home"),
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Logger:      slog.New(slog.DiscardHandler),
		})
		if err != nil {
			return fmt.Errorf("demo: starting %s's node: %w", name, err)
		}
		d := &demoDevice{name: name, n: n, root: filepath.Join(dir, strings.ToLower(name), "Team")}
		devs = append(devs, d)
		if err := n.Start(ctx); err != nil {
			return fmt.Errorf("demo: starting %s's node: %w", name, err)
		}
		say("  %-5s  device %s", name, n.ID())
	}
	alice, bob, carol := devs[0], devs[1], devs[2]

	say("\n1. Alice shares her folder \"Team\" and invites Bob as editor, Carol as viewer.")
	files := map[string]string{
		"plan.txt":   "Q1 plan: ship the beta.\n",
		"notes.txt":  "Meeting notes.\n",
		"readme.txt": "Welcome to the team folder.\n",
	}
	if err := os.MkdirAll(alice.root, 0o755); err != nil {
		return err
	}
	for rel, content := range files {
		if err := os.WriteFile(alice.file(rel), []byte(content), 0o644); err != nil {
			return err
		}
	}
	f, err := alice.n.CreateFolder(alice.root, "Team")
	if err != nil {
		return fmt.Errorf("demo: sharing Alice's folder: %w", err)
	}
	for _, who := range []struct {
		d    *demoDevice
		role crdt.Role
	}{{bob, crdt.RoleEditor}, {carol, crdt.RoleViewer}} {
		key, err := alice.n.Invite(f.ID(), node.InviteOptions{Role: who.role, Expires: time.Hour})
		if err != nil {
			return fmt.Errorf("demo: inviting %s: %w", who.d.name, err)
		}
		say("    invitation for %s (%s): %.40s...", who.d.name, who.role, key.String())
		if _, err := who.d.n.Join(ctx, key, who.d.root); err != nil {
			return fmt.Errorf("demo: %s joining: %w", who.d.name, err)
		}
	}
	if err := wait("Bob and Carol received the three files", func() bool {
		for rel, content := range files {
			if bob.read(rel) != content || carol.read(rel) != content {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}

	say("\n2. Bob edits plan.txt; the change spreads to Alice and Carol.")
	edited := "Q1 plan: ship the beta, then the relay.\n"
	if err := os.WriteFile(bob.file("plan.txt"), []byte(edited), 0o644); err != nil {
		return err
	}
	if err := wait("Alice and Carol have Bob's edit", func() bool {
		return alice.read("plan.txt") == edited && carol.read("plan.txt") == edited
	}); err != nil {
		return err
	}

	say("\n3. Alice and Bob edit notes.txt at the same time (Bob is paused, offline).")
	if err := bob.n.PauseFolder(f.ID()); err != nil {
		return err
	}
	aliceNotes, bobNotes := "Meeting notes, by Alice.\n", "Meeting notes, by Bob.\n"
	if err := os.WriteFile(alice.file("notes.txt"), []byte(aliceNotes), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(bob.file("notes.txt"), []byte(bobNotes), 0o644); err != nil {
		return err
	}
	if err := wait("Carol has Alice's notes while Bob is offline", func() bool { return carol.read("notes.txt") == aliceNotes }); err != nil {
		return err
	}
	say("    Bob comes back online.")
	if err := bob.n.ResumeFolder(f.ID()); err != nil {
		return err
	}
	var copyName string
	if err := wait("both edits are kept: one wins, the other becomes a conflict copy on every device", func() bool {
		winner := alice.read("notes.txt")
		if winner != aliceNotes && winner != bobNotes {
			return false
		}
		name, loser := conflictCopy(alice.root, "notes")
		if name == "" || loser == winner {
			return false
		}
		for _, d := range devs {
			if d.read("notes.txt") != winner || d.read(name) != loser {
				return false
			}
		}
		copyName = name
		return true
	}); err != nil {
		return err
	}
	say("    notes.txt holds %q; the other edit is in %s", strings.TrimSpace(alice.read("notes.txt")), copyName)

	say("\n4. Bob locks plan.txt: it becomes read-only on Alice's and Carol's disks.")
	li, err := bob.n.Lock(ctx, bob.file("plan.txt"), 10*time.Minute)
	if err != nil {
		return fmt.Errorf("demo: Bob's lock: %w", err)
	}
	if err := wait("the lock is granted by the folder's witness (Alice's device, the owner's)", func() bool {
		for _, l := range bob.n.Locks() {
			if l.ID == li.ID && l.State == node.LockGranted {
				return true
			}
		}
		return false
	}); err != nil {
		return err
	}
	if err := wait("plan.txt is read-only for Alice and Carol, writable for Bob", func() bool {
		return !isWritable(alice.file("plan.txt")) && !isWritable(carol.file("plan.txt")) && isWritable(bob.file("plan.txt"))
	}); err != nil {
		return err
	}
	say("    Bob unlocks it.")
	if _, err := bob.n.Unlock(bob.file("plan.txt"), false); err != nil {
		return fmt.Errorf("demo: Bob's unlock: %w", err)
	}
	if err := wait("plan.txt is writable again everywhere", func() bool {
		return isWritable(alice.file("plan.txt")) && isWritable(carol.file("plan.txt"))
	}); err != nil {
		return err
	}

	say("\n5. Carol, a viewer, edits readme.txt: her device keeps her edit but does not share it.")
	if err := os.WriteFile(carol.file("readme.txt"), []byte("Carol was here.\n"), 0o644); err != nil {
		return err
	}
	if err := wait("Carol's device refused to share the edit (no write right) and restored the shared version", func() bool {
		name, content := conflictCopy(carol.root, "readme")
		return name != "" && content == "Carol was here.\n" && carol.read("readme.txt") == files["readme.txt"]
	}); err != nil {
		return err
	}
	name, _ := conflictCopy(carol.root, "readme")
	say("    her text is kept on her device as %s; Alice and Bob still read %q",
		name, strings.TrimSpace(alice.read("readme.txt")))
	if alice.read("readme.txt") != files["readme.txt"] || bob.read("readme.txt") != files["readme.txt"] {
		return errors.New("demo: a viewer's edit reached another device")
	}

	say("\nDone in %.1f s. Try it for real: 'meshfold run --folder ~/Meshfold', then", time.Since(start).Seconds())
	say("'meshfold invite ~/Meshfold --role editor' and 'meshfold join <key> <dir>' on another device.")
	return nil
}

// conflictCopy finds a conflict copy of base (a name without extension) in
// dir and returns its name and content ("" when there is none).
func conflictCopy(dir, base string) (string, string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", ""
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+".sync-conflict-") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return "", ""
			}
			return e.Name(), string(b)
		}
	}
	return "", ""
}

// isWritable tells whether a file has any write bit set.
func isWritable(name string) bool {
	st, err := os.Stat(name)
	if err != nil {
		return false
	}
	return st.Mode().Perm()&0o222 != 0
}
