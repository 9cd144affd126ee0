package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/chunks"
	"github.com/meshfold/meshfold/protocol/index"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/logsync"
	"github.com/meshfold/meshfold/store"
)

func TestNodeResolveFolder(t *testing.T) {
	n := testNode(t, "a")
	dir1, dir2 := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(dir1, "sub", "deeper"), 0o755)
	f1, err := n.CreateFolder(dir1, "one")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := n.CreateFolder(dir2, "two")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ref  string
		want *Folder
	}{
		{f1.ID(), f1},
		{f2.ID()[len(f2.ID())-6:], f2},
		{dir1, f1},
		{filepath.Join(dir1, "sub", "deeper"), f1},
		{dir2 + "/", f2},
	} {
		got, err := n.ResolveFolder(c.ref)
		if err != nil || got != c.want {
			t.Errorf("ResolveFolder(%q) = %v, %v; want %s", c.ref, got, err, c.want.ID())
		}
	}
	for _, ref := range []string{"", "nope", "ab", filepath.Dir(dir1), "/elsewhere"} {
		if _, err := n.ResolveFolder(ref); !errors.Is(err, ErrUnknownFolder) {
			t.Errorf("ResolveFolder(%q): %v, want ErrUnknownFolder", ref, err)
		}
	}
}

func TestSubPath(t *testing.T) {
	f := &Folder{root: "/data/team"}
	for in, want := range map[string]string{
		"": "", ".": "", "Design": "Design", "Design/": "Design", "a//b": "a/b", "a/./b": "a/b", "a/../b": "b",
		"/data/team": "", "/data/team/Design/x": "Design/x",
	} {
		got, err := f.SubPath(in)
		if err != nil || got != want {
			t.Errorf("SubPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../x", "a/../../x", "/data", "/data/teamwork", "/etc/passwd"} {
		if _, err := f.SubPath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("SubPath(%q): %v, want ErrBadPath", in, err)
		}
	}
}

// TestRightsOnOneFolder drives restrict, groups, grants and policy through
// the node methods on a real folder and checks the log's state after each.
func TestRightsOnOneFolder(t *testing.T) {
	n := testNode(t, "a")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "Design", "Deep"), 0o755)
	f, err := n.CreateFolder(dir, "team")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restrict("Design/Deep", false); err != nil {
		t.Fatal(err)
	}
	var design, deep crdt.NodeID
	f.Log(func(l *crdt.Log) error {
		var ok1, ok2 bool
		design, ok1 = l.NodeAt("Design")
		deep, ok2 = l.NodeAt("Design/Deep")
		if !ok1 || !ok2 {
			t.Fatalf("restrict did not create the folder nodes: %v %v", ok1, ok2)
		}
		return nil
	})
	x := f.snapshot()
	if x.nodes[design].Restricted || !x.nodes[deep].Restricted {
		t.Fatalf("restricted flags: Design %v, Deep %v", x.nodes[design].Restricted, x.nodes[deep].Restricted)
	}
	if err := f.Restrict("Design/Deep", false); err == nil {
		t.Fatal("restricting twice succeeded")
	}
	if err := f.Restrict("Missing", false); !errors.Is(err, ErrNotADirectory) {
		t.Fatalf("restricting a missing folder: %v", err)
	}
	if err := f.Restrict("", false); err == nil {
		t.Fatal("restricting the root succeeded")
	}
	if err := f.Restrict("Design", true); err == nil {
		t.Fatal("unrestricting a folder that is not restricted succeeded")
	}

	if err := f.CreateGroup("Design"); err != nil {
		t.Fatal(err)
	}
	if err := f.CreateGroup("Design"); !errors.Is(err, ErrGroupExists) {
		t.Fatalf("a second group of the same name: %v", err)
	}
	me := n.User().String()
	if err := f.GroupMember("Design", me, false); err != nil {
		t.Fatal(err)
	}
	if gs := f.Groups(); len(gs) != 1 || gs[0].Name != "Design" || !slices.Equal(gs[0].Members, []string{me}) {
		t.Fatalf("groups: %+v", gs)
	}
	if err := f.GroupMember("Design", "12D3KooWNobody", false); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("adding an unknown user: %v", err)
	}
	if err := f.GroupMember("Nope", me, false); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("adding to an unknown group: %v", err)
	}
	if err := f.Grant("group:Design", crdt.RoleEditor, "Design/Deep"); err != nil {
		t.Fatal(err)
	}
	if err := f.Grant("group:Nope", crdt.RoleEditor, ""); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("granting to an unknown group: %v", err)
	}
	if err := f.Grant(me, crdt.RoleViewer, "../out"); !errors.Is(err, ErrBadPath) {
		t.Fatalf("granting outside the folder: %v", err)
	}
	rep, err := f.Members("Design/Deep")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Restricted || rep.Path != "Design/Deep" || len(rep.Members) != 1 || !rep.Members[0].Founder || !rep.Members[0].You ||
		len(rep.Members[0].Devices) != 1 || rep.Members[0].Devices[0] != n.ID().String() {
		t.Fatalf("members of Design/Deep: %+v", rep)
	}
	if err := f.GroupMember("Design", me, true); err != nil {
		t.Fatal(err)
	}
	if err := f.GroupMember("Design", me, true); err == nil {
		t.Fatal("removing a user who is not in the group succeeded")
	}
	if err := f.Revoke("group:Design", "Design/Deep"); err != nil {
		t.Fatal(err)
	}
	if err := f.Revoke("group:Design", "Design/Deep"); err == nil || !strings.Contains(err.Error(), "has no grant in this folder") {
		t.Fatalf("revoking a grant that is gone: %v", err)
	}
	if err := f.Restrict("Design/Deep", true); err != nil {
		t.Fatal(err)
	}
	if f.snapshot().nodes[deep].Restricted {
		t.Fatal("unrestrict did not lift the restriction")
	}
	if err := f.SetPolicy(crdt.PolicyEditors); err != nil {
		t.Fatal(err)
	}
	if rep, _ := f.Members(""); rep.Policy != "editors" {
		t.Fatalf("policy %q", rep.Policy)
	}
	// An invitation to a subfolder gives it a folder node if it has none.
	os.MkdirAll(filepath.Join(dir, "Shared"), 0o755)
	if _, err := n.Invite(f.ID(), InviteOptions{Role: crdt.RoleViewer, Path: "Shared"}); err != nil {
		t.Fatal(err)
	}
	f.Log(func(l *crdt.Log) error {
		if _, ok := l.NodeAt("Shared"); !ok {
			t.Fatal("inviting to a subfolder did not create its folder node")
		}
		return nil
	})
	if _, err := n.Invite(f.ID(), InviteOptions{Role: crdt.RoleViewer, Path: "../x"}); !errors.Is(err, ErrBadPath) {
		t.Fatalf("inviting outside the folder: %v", err)
	}
	if _, err := n.Invite(f.ID(), InviteOptions{Role: crdt.RoleViewer, Path: "Missing"}); !errors.Is(err, ErrNotADirectory) {
		t.Fatalf("inviting to a missing subfolder: %v", err)
	}
	if _, err := ParsePolicy("everyone"); err == nil {
		t.Fatal("an unknown policy parsed")
	}
}

// TestAccessRequestsAndRestriction: joins with an invitation needing
// approval wait as requests; an approved device becomes a member and sees a
// restricted folder as "no access"; a denied one learns it is denied; a
// member without manage rights is refused with the log's reason.
func TestAccessRequestsAndRestriction(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	c := testNode(t, "c", a.AddrInfo())
	dirA := t.TempDir()
	os.MkdirAll(filepath.Join(dirA, "Design"), 0o755)
	os.WriteFile(filepath.Join(dirA, "Design", "logo.svg"), []byte("<svg/>"), 0o644)
	os.WriteFile(filepath.Join(dirA, "readme.txt"), []byte("hello"), 0o644)
	fa, err := a.CreateFolder(dirA, "team")
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.Restrict("Design", false); err != nil {
		t.Fatal(err)
	}
	key, err := a.Invite(fa.ID(), InviteOptions{Role: crdt.RoleEditor, Uses: 2, Approval: true})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := join.ParseKey(key.String())
	if err != nil {
		t.Fatal(err)
	}
	dirB, dirC := filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	fb, err := b.Join(context.Background(), parsed, dirB)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := c.Join(context.Background(), parsed, dirC)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Folder{fb, fc} {
		if st := f.Status(); st.Access != AccessPending || st.Request == "" || st.NoAccess != nil {
			t.Fatalf("a join needing approval: status %+v", st)
		}
	}
	var reqs []RequestInfo
	eventually(t, "both requests on the owner", func() error {
		if reqs = fa.Requests(); len(reqs) != 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if err := fa.Settle("nope", true, crdt.RoleNone); !errors.Is(err, ErrUnknownRequest) {
		t.Fatalf("settling an unknown request: %v", err)
	}
	for _, r := range reqs {
		switch r.User {
		case b.User().String():
			if err := fa.Settle(r.ID, true, crdt.RoleNone); err != nil {
				t.Fatal(err)
			}
		case c.User().String():
			if err := fa.Settle(r.ID[len(r.ID)-8:], false, crdt.RoleNone); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "the approved device is a member with the readme", func() error {
		if st := fb.Status(); st.Access != AccessMember || !slices.Equal(st.NoAccess, []string{"Design"}) {
			return errors.New("not a member yet")
		}
		return fileIs(dirB, "readme.txt", []byte("hello"))()
	})
	eventually(t, "the denied device learns it", func() error {
		if st := fc.Status(); st.Access != AccessDenied {
			return errors.New("not denied yet")
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(dirC, "readme.txt")); err == nil {
		t.Fatal("the denied device received a file")
	}
	if _, err := os.Stat(filepath.Join(dirB, "Design", "logo.svg")); err == nil {
		t.Fatal("a member outside the restricted folder received its file")
	}
	rep, err := fb.Members("")
	if err != nil {
		t.Fatal(err)
	}
	var sawB bool
	for _, m := range rep.Members {
		if m.User == b.User().String() {
			sawB = m.Role == "editor" && m.Here && m.You && slices.Equal(m.Devices, []string{b.ID().String()})
		}
	}
	if !sawB {
		t.Fatalf("the approved member in members: %+v", rep.Members)
	}
	err = fb.Grant(b.User().String(), crdt.RoleViewer, "Design")
	if !errors.Is(err, ErrRefused) || !errors.Is(err, crdt.ErrUnauthorized) {
		t.Fatalf("an editor granting: %v", err)
	}

	// An editor who may not manage cannot invite at all; once editors manage
	// access, an editor invites viewers directly, and an invitation for a
	// role it cannot grant becomes one that needs approval.
	if _, err := b.Invite(fb.ID(), InviteOptions{Role: crdt.RoleViewer}); !errors.Is(err, crdt.ErrUnauthorized) {
		t.Fatalf("an editor inviting under the managers policy: %v", err)
	}
	if err := fa.SetPolicy(crdt.PolicyEditors); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the editors policy on b", func() error {
		if rep, _ := fb.Members(""); rep.Policy != "editors" {
			return errors.New(rep.Policy)
		}
		return nil
	})
	kv, err := b.Invite(fb.ID(), InviteOptions{Role: crdt.RoleViewer})
	if err != nil || fb.InviteNeedsApproval(kv.Invite) {
		t.Fatalf("an editor inviting a viewer: approval %v, %v", fb.InviteNeedsApproval(kv.Invite), err)
	}
	ke, err := b.Invite(fb.ID(), InviteOptions{Role: crdt.RoleEditor})
	if err != nil || !fb.InviteNeedsApproval(ke.Invite) {
		t.Fatalf("an editor inviting an editor: approval %v, %v", fb.InviteNeedsApproval(ke.Invite), err)
	}
}

// TestServersWithholdRestrictedAndPending asks a member's servers directly:
// a member outside a restricted folder gets none of its index entries or
// chunks; a device whose access request is pending may read the log (to
// learn the answer) but gets no index entry and no chunk at all.
func TestServersWithholdRestrictedAndPending(t *testing.T) {
	a := testNode(t, "a")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "Design"), 0o755)
	secret := randomBytes(5, 300<<10)
	os.WriteFile(filepath.Join(dir, "Design", "secret.bin"), secret, 0o644)
	os.WriteFile(filepath.Join(dir, "open.txt"), []byte("open"), 0o644)
	fa, err := a.CreateFolder(dir, "team")
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.Restrict("Design", false); err != nil {
		t.Fatal(err)
	}
	signed := func(p string) store.FileInfo {
		var fi store.FileInfo
		eventually(t, "the signed index entry of "+p, func() error {
			var ok bool
			fi, ok, err = fa.idx.Get(p)
			if err != nil || !ok || len(fi.Signature) == 0 {
				return fmt.Errorf("not signed yet (%v)", err)
			}
			return nil
		})
		return fi
	}
	secretFI, openFI := signed("Design/secret.bin"), signed("open.txt")
	b := testNode(t, "b", a.AddrInfo())
	share(t, a, fa, b, crdt.RoleEditor, filepath.Join(t.TempDir(), "b"))
	key, err := a.Invite(fa.ID(), InviteOptions{Role: crdt.RoleViewer, Approval: true})
	if err != nil {
		t.Fatal(err)
	}
	c := testNode(t, "c", a.AddrInfo())
	if _, err := c.Join(context.Background(), key, filepath.Join(t.TempDir(), "c")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	entries := func(x *Node) []string {
		var paths []string
		index.Open(ctx, x.Host(), a.ID(), index.Request{Folder: fa.ID(), Device: store.DeviceID(a.ID())}, nil, func(fi store.FileInfo) error {
			paths = append(paths, fi.Path)
			return nil
		})
		return paths
	}
	chunksOf := func(x *Node, fi store.FileInfo) int {
		var cids []cid.Cid
		for _, ch := range fi.Chunks {
			cids = append(cids, ch.CID)
		}
		n := 0
		chunks.Fetch(ctx, chunks.FetchOptions{Folder: fa.ID(), Open: chunks.OpenWith(x.Host())}, cids, []peer.ID{a.ID()},
			func(cid.Cid, []byte) error { n++; return nil })
		return n
	}
	if got := entries(b); !slices.Contains(got, "open.txt") || slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, "Design") }) {
		t.Fatalf("the member outside Design received index entries %v", got)
	}
	if n := chunksOf(b, secretFI); n != 0 {
		t.Fatalf("the member outside Design received %d chunks of its file", n)
	}
	if n := chunksOf(b, openFI); n != len(openFI.Chunks) {
		t.Fatalf("the member received %d of %d chunks of an open file", n, len(openFI.Chunks))
	}
	if got := entries(c); len(got) != 0 {
		t.Fatalf("a pending requester received index entries %v", got)
	}
	if n := chunksOf(c, openFI); n != 0 {
		t.Fatalf("a pending requester received %d chunks", n)
	}
	ops, err := logsync.Open(ctx, c.Host(), a.ID(), fa.ID(), nil, logsync.PullFuncs{
		Have:    func(cid.Cid) bool { return false },
		Parents: func([]byte) ([]cid.Cid, error) { return nil, nil },
		Deliver: func(cid.Cid, []byte) error { return nil },
	})
	if err != nil || ops == 0 {
		t.Fatalf("a pending requester could not read the log to learn the answer: %d ops, %v", ops, err)
	}
}
