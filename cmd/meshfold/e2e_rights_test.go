package main

// End-to-end tests of members, rights, groups, restricted folders and access
// requests: real meshfold processes, real folders, real libp2p on loopback.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshfold/meshfold/node"
)

// user is the user ID of d's device.
func (d *daemon) user() string {
	d.t.Helper()
	return d.status().User
}

// folderStatus is d's status of folder id.
func (d *daemon) folderStatus(id string) (node.FolderReport, error) {
	for _, f := range d.status().Folders {
		if f.ID == id {
			return f, nil
		}
	}
	return node.FolderReport{}, fmt.Errorf("%s does not sync %s", d.name, id)
}

// fails runs a command that must fail with one line of error and exit code 1.
func (d *daemon) fails(want string, args ...string) {
	d.t.Helper()
	out, err := d.try(args...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		d.t.Fatalf("meshfold %s: want exit 1, got %v\n%s", strings.Join(args, " "), err, out)
	}
	out = strings.TrimSpace(out)
	if strings.Contains(out, "\n") || !strings.Contains(out, want) {
		d.t.Fatalf("meshfold %s: want one line containing %q, got:\n%s", strings.Join(args, " "), want, out)
	}
}

func absent(dir, rel string) error {
	if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
		return fmt.Errorf("%s is on %s and should not be", rel, dir)
	}
	return nil
}

// TestE2ETeamSpaceRestrictedDesign: the Dropbox team space of the seeds. A
// "Design" folder is restricted and staffed through a group: the member
// outside the group sees the name with "no access" and receives none of its
// files; the group member receives them. Then grants and revokes change
// what members receive and may write, and bad input fails in one line.
func TestE2ETeamSpaceRestrictedDesign(t *testing.T) {
	a, b, c := startDaemon(t, "owner"), startDaemon(t, "outsider"), startDaemon(t, "designer")
	dirA, dirB, dirC := t.TempDir(), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	write(t, dirA, "readme.txt", "team readme")
	write(t, dirA, "Design/logo.svg", "<svg>logo</svg>")
	write(t, dirA, "Reports/q1.txt", "first quarter")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	a.cli("restrict", id, "Design")
	a.cli("group", "create", id, "Design")
	joinFolder(t, a, id, b, dirB, "editor")
	joinFolder(t, a, id, c, dirC, "editor")
	cUser, bUser := c.user(), b.user()
	a.cli("group", "add", id, "Design", cUser)
	a.cli("grant", id, "group:Design", "editor", "--path", "Design")

	waitUntil(t, "the Design files on the group member", hasContent(dirC, "Design/logo.svg", "<svg>logo</svg>"))
	waitUntil(t, "the readme on the outsider", hasContent(dirB, "readme.txt", "team readme"))
	waitUntil(t, "the outsider's no-access status", func() error {
		f, err := b.folderStatus(id)
		if err != nil {
			return err
		}
		if !slices.Equal(f.NoAccess, []string{"Design"}) {
			return fmt.Errorf("no access %v", f.NoAccess)
		}
		return nil
	})
	if out := b.cli("members", id); !strings.Contains(out, "no access: /Design") {
		t.Fatalf("the outsider's members view does not show Design as no access:\n%s", out)
	}
	if out := b.cli("status"); !strings.Contains(out, "no access: /Design") {
		t.Fatalf("the outsider's status does not show Design as no access:\n%s", out)
	}
	// A file written in Design now flows to the group member only; one
	// written after it outside Design reaching the outsider proves the
	// outsider was served everything else.
	write(t, dirA, "Design/mockup.txt", "new mockup")
	waitUntil(t, "the new Design file on the group member", hasContent(dirC, "Design/mockup.txt", "new mockup"))
	write(t, dirA, "after-mockup.txt", "later")
	waitUntil(t, "a later file on the outsider", hasContent(dirB, "after-mockup.txt", "later"))
	for _, rel := range []string{"Design/logo.svg", "Design/mockup.txt"} {
		if err := absent(dirB, rel); err != nil {
			t.Fatal(err)
		}
	}

	// members of Design, seen by the owner: the group member via the group,
	// granted here; the outsider is not listed.
	var rep node.MembersReport
	if err := json.Unmarshal([]byte(a.cli("members", id, "--path", "Design", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Restricted {
		t.Fatalf("Design not reported restricted: %+v", rep)
	}
	var sawC bool
	for _, m := range rep.Members {
		if m.User == bUser {
			t.Fatalf("the outsider is listed as a member of Design: %+v", m)
		}
		if m.User == cUser {
			sawC = m.Role == "editor" && m.Group == "Design" && m.Here && len(m.Devices) == 1
		}
	}
	if !sawC {
		t.Fatalf("the group member is not listed as editor of Design via the group: %+v", rep.Members)
	}

	// Someone without manage rights cannot grant; the log's refusal is one line.
	b.fails("refused", "grant", id, bUser, "editor", "--path", "Design")

	// A grant changes what the outsider receives: what was withheld arrives.
	a.cli("grant", id, bUser, "viewer", "--path", "Design")
	waitUntil(t, "the Design files on the outsider after the grant", func() error {
		if err := hasContent(dirB, "Design/logo.svg", "<svg>logo</svg>")(); err != nil {
			return err
		}
		return hasContent(dirB, "Design/mockup.txt", "new mockup")()
	})
	waitUntil(t, "the outsider's no-access status cleared", func() error {
		if f, err := b.folderStatus(id); err != nil || len(f.NoAccess) != 0 {
			return fmt.Errorf("no access %v (%v)", f.NoAccess, err)
		}
		return nil
	})
	// A revoke stops the flow again.
	a.cli("revoke", id, bUser, "--path", "Design")
	write(t, dirA, "Design/v2.txt", "after the revoke")
	waitUntil(t, "the post-revoke Design file on the group member", hasContent(dirC, "Design/v2.txt", "after the revoke"))
	write(t, dirA, "after-revoke.txt", "later")
	waitUntil(t, "a later file on the outsider", hasContent(dirB, "after-revoke.txt", "later"))
	if err := absent(dirB, "Design/v2.txt"); err != nil {
		t.Fatal(err)
	}

	// Restricting a folder members already receive stops its flow from then
	// on; the name shows as no access.
	waitUntil(t, "the report on the outsider", hasContent(dirB, "Reports/q1.txt", "first quarter"))
	a.cli("restrict", id, filepath.Join(dirA, "Reports")) // a local path names the subfolder too
	waitUntil(t, "Reports listed as no access on the outsider", func() error {
		f, err := b.folderStatus(id)
		if err != nil {
			return err
		}
		if !slices.Equal(f.NoAccess, []string{"Design", "Reports"}) {
			return fmt.Errorf("no access %v", f.NoAccess)
		}
		return nil
	})
	write(t, dirA, "Reports/q2.txt", "second quarter")
	write(t, dirA, "after-restrict.txt", "later")
	waitUntil(t, "a later file on the outsider", hasContent(dirB, "after-restrict.txt", "later"))
	if err := absent(dirB, "Reports/q2.txt"); err != nil {
		t.Fatal(err)
	}
	a.cli("unrestrict", id, "Reports")
	waitUntil(t, "the report written while restricted, after unrestrict", hasContent(dirB, "Reports/q2.txt", "second quarter"))

	// Changing the designer's root role to viewer takes write access away:
	// the designer's edit of the readme no longer spreads.
	a.cli("grant", id, cUser, "viewer")
	waitUntil(t, "the designer's demotion seen by the designer", func() error {
		out := c.cli("members", id, "--json")
		if !strings.Contains(out, `"role": "viewer"`) {
			return errors.New("not yet viewer")
		}
		return nil
	})
	write(t, dirC, "readme.txt", "the demoted designer's edit")
	waitUntil(t, "the shared readme restored on the designer's device", hasContent(dirC, "readme.txt", "team readme"))
	write(t, dirA, "after-demotion.txt", "later")
	waitUntil(t, "a later file on the designer", hasContent(dirC, "after-demotion.txt", "later"))
	if err := hasContent(dirA, "readme.txt", "team readme")(); err != nil {
		t.Fatalf("the demoted member's edit spread: %v", err)
	}

	// Bad input: one line, exit 1.
	a.fails("unknown folder", "members", "no-such-folder")
	a.fails("no such user", "grant", id, "12D3KooWNotAUser", "viewer")
	a.fails("no such group", "grant", id, "group:Nope", "viewer")
	a.fails("unknown role", "grant", id, bUser, "boss")
	a.fails("not inside the folder", "grant", id, bUser, "viewer", "--path", "../elsewhere")
	a.fails("not inside the folder", "members", id, "--path", "/etc")
	a.fails("no such subfolder", "restrict", id, "Missing")
	a.fails("unknown policy", "policy", id, "everyone")
	a.fails("its grants are on /Design; revoke with --path there", "revoke", id, "group:Design")
	a.fails("already exists", "group", "create", id, "Design")
	a.fails("no such access request", "approve", id, "bafyNope")
	c.fails("refused", "policy", id, "owners")
	a.cli("policy", id, "owners")
	if out := a.cli("members", id); !strings.Contains(out, "manage access: owners") {
		t.Fatalf("the policy is not shown: %s", out)
	}
}

// TestE2ELinksAndRequests: the seeds' "view link and edit link" and access
// requests. Two invitation keys, viewer and editor: the viewer's local edit
// does not spread, the editor's does. Two non-members join with a key that
// needs approval: one is approved and syncs, the other is denied and told so.
func TestE2ELinksAndRequests(t *testing.T) {
	a, v, e := startDaemon(t, "owner"), startDaemon(t, "viewer"), startDaemon(t, "editor")
	r1, r2 := startDaemon(t, "approved"), startDaemon(t, "denied")
	dirA, dirV, dirE := t.TempDir(), filepath.Join(t.TempDir(), "v"), filepath.Join(t.TempDir(), "e")
	dirR1, dirR2 := filepath.Join(t.TempDir(), "r1"), filepath.Join(t.TempDir(), "r2")
	write(t, dirA, "plan.txt", "the plan")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	viewLink := a.cli("invite", dirA, "--role", "viewer") // the folder by its directory
	editLink := a.cli("invite", id[len(id)-8:], "--role", "editor", "--uses", "5")
	v.cli("join", viewLink, dirV)
	e.cli("join", editLink, dirE)
	waitUntil(t, "the plan on both", func() error {
		if err := hasContent(dirV, "plan.txt", "the plan")(); err != nil {
			return err
		}
		return hasContent(dirE, "plan.txt", "the plan")()
	})
	write(t, dirE, "plan.txt", "the editor's plan")
	waitUntil(t, "the editor's edit everywhere", func() error {
		if err := hasContent(dirA, "plan.txt", "the editor's plan")(); err != nil {
			return err
		}
		return hasContent(dirV, "plan.txt", "the editor's plan")()
	})
	write(t, dirV, "plan.txt", "the viewer's plan")
	waitUntil(t, "the shared plan restored on the viewer's device", hasContent(dirV, "plan.txt", "the editor's plan"))
	write(t, dirE, "later.txt", "later")
	waitUntil(t, "a later file on the viewer", hasContent(dirV, "later.txt", "later"))
	for _, d := range []string{dirA, dirE} {
		if err := hasContent(d, "plan.txt", "the editor's plan")(); err != nil {
			t.Fatalf("the viewer's edit spread: %v", err)
		}
	}

	// Requests: a key that needs approval makes joins pending.
	reqKey := a.cli("invite", id, "--role", "editor", "--uses", "2", "--approval")
	out := r1.cli("join", reqKey, dirR1)
	if !strings.Contains(out, "Pending") {
		t.Fatalf("a join needing approval did not say it is pending:\n%s", out)
	}
	denied := exec.Command(r2.bin, "join", reqKey, dirR2, "--wait", "60s", "--home", r2.home)
	var deniedOut strings.Builder
	denied.Stdout, denied.Stderr = &deniedOut, &deniedOut
	if err := denied.Start(); err != nil {
		t.Fatal(err)
	}
	r1User, r2User := r1.user(), r2.user()
	var reqs []node.RequestInfo
	waitUntil(t, "both requests listed on a manager's device", func() error {
		if err := json.Unmarshal([]byte(a.cli("requests", id, "--json")), &reqs); err != nil {
			return err
		}
		if len(reqs) != 2 {
			return fmt.Errorf("%d requests", len(reqs))
		}
		return nil
	})
	if f, err := r1.folderStatus(id); err != nil || f.Access != node.AccessPending {
		t.Fatalf("the pending joiner's status: %+v %v", f, err)
	}
	if err := absent(dirR1, "plan.txt"); err != nil {
		t.Fatalf("a pending joiner received files: %v", err)
	}
	for _, r := range reqs {
		switch r.User {
		case r1User:
			a.cli("approve", id, r.ID)
		case r2User:
			a.cli("deny", id, r.ID[len(r.ID)-10:])
		default:
			t.Fatalf("a request from an unknown user: %+v", r)
		}
	}
	err := denied.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(deniedOut.String(), "denied your access request") {
		t.Fatalf("the denied joiner's 'join --wait': %v\n%s", err, deniedOut.String())
	}
	waitUntil(t, "the approved joiner's files", hasContent(dirR1, "plan.txt", "the editor's plan"))
	write(t, dirR1, "from-r1.txt", "hello from the new editor")
	waitUntil(t, "the approved editor's file on the owner", hasContent(dirA, "from-r1.txt", "hello from the new editor"))
	if f, err := r2.folderStatus(id); err != nil || f.Access != node.AccessDenied {
		t.Fatalf("the denied joiner's status: %+v %v", f, err)
	}
	if err := absent(dirR2, "plan.txt"); err != nil {
		t.Fatal(err)
	}
	if out := r2.cli("status"); !strings.Contains(out, "denied") {
		t.Fatalf("the denied joiner's status text does not say so:\n%s", out)
	}
	if out := a.cli("requests", id); !strings.Contains(out, "No pending requests") {
		t.Fatalf("requests still listed after settling:\n%s", out)
	}
}

// TestE2ELinkSecondDevice: a second device of the same user is certified by
// the first, links with the printed key, syncs the user's folders with the
// user's rights (its edits spread as the owner's), and keeps acting for the
// user after a restart.
func TestE2ELinkSecondDevice(t *testing.T) {
	a, a2 := startDaemon(t, "laptop"), startDaemon(t, "desktop")
	dirA, base := filepath.Join(t.TempDir(), "work"), t.TempDir()
	write(t, dirA, "notes.txt", "my notes")
	a.cli("folder", "add", dirA)
	id := folderID(t, a)
	user := a.user()
	a2.fails("not a valid device key", "device", "link", "mfdev1-garbage", base)
	a.fails("not a device ID", "device", "add", "nope")
	key := a.cli("device", "add", a2.status().Device)
	third := startDaemon(t, "stranger")
	third.fails("certifies another device", "device", "link", key, base)
	out := a2.cli("device", "link", key, base)
	if !strings.Contains(out, user) {
		t.Fatalf("link output does not name the user:\n%s", out)
	}
	dirA2 := filepath.Join(base, "work")
	waitUntil(t, "the notes on the second device", hasContent(dirA2, "notes.txt", "my notes"))
	write(t, dirA2, "from-desktop.txt", "written on the second device")
	waitUntil(t, "the second device's file on the first", hasContent(dirA, "from-desktop.txt", "written on the second device"))
	var rep node.MembersReport
	if err := json.Unmarshal([]byte(a.cli("members", id, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Members) != 1 || rep.Members[0].User != user || len(rep.Members[0].Devices) != 2 {
		t.Fatalf("members after linking: %+v", rep.Members)
	}
	a2.fails("holds no user key", "device", "add", third.status().Device)
	a2.stop()
	a2.start()
	if got := a2.user(); got != user {
		t.Fatalf("after a restart the linked device acts for %s, want %s", got, user)
	}
}
