package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/store"
)

// Errors of the members-and-rights flows. Each is the start of a one-line
// message the CLI prints as is.
var (
	ErrUnknownUser    = errors.New("no such user in the folder")
	ErrAmbiguousUser  = errors.New("more than one user matches")
	ErrUnknownGroup   = errors.New("no such group in the folder")
	ErrGroupExists    = errors.New("a group with that name already exists")
	ErrUnknownRequest = errors.New("no such access request")
	ErrBadPath        = errors.New("the path is not inside the folder")
	ErrNotADirectory  = errors.New("no such subfolder")
	ErrRefused        = errors.New("refused")
)

// Access states of this device in a folder (Status.Access).
const (
	AccessMember  = ""        // a live member device
	AccessPending = "pending" // joined with an invitation that needs a manager's approval
	AccessDenied  = "denied"  // that request was denied
)

// minFolderSuffix is the shortest folder ID suffix accepted for a folder.
const minFolderSuffix = 4

// groupPrefix marks a group where a user or group is expected ("group:Design").
const groupPrefix = "group:"

// ResolveFolder finds a folder this node syncs by its ID, a unique suffix of
// its ID (at least minFolderSuffix characters), or its local directory (or a
// directory inside it: the folder holding it).
func (n *Node) ResolveFolder(ref string) (*Folder, error) {
	refs := n.folderRefs()
	fr, err := ResolveFolder(refs, ref)
	if errors.Is(err, ErrUnknownFolder) && filepath.IsAbs(ref) {
		fr, _, err = FolderOf(refs, filepath.Clean(ref))
		if errors.Is(err, ErrNotInFolder) {
			err = fmt.Errorf("%q: %w", ref, ErrUnknownFolder)
		}
	}
	if err != nil {
		return nil, err
	}
	if f, ok := n.Folder(fr.ID); ok {
		return f, nil
	}
	return nil, fmt.Errorf("%q: %w", ref, ErrUnknownFolder)
}

// SubPath turns what a user typed for a path inside folder f (relative to its
// root, or an absolute path under the root) into the log's slash path. "" and
// "." are the folder itself.
func (f *Folder) SubPath(p string) (string, error) {
	if p == "" || p == "." {
		return "", nil
	}
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(f.root, filepath.Clean(p))
		if err != nil || !(filepath.IsLocal(rel) || rel == ".") {
			return "", fmt.Errorf("%q: %w %s", p, ErrBadPath, f.root)
		}
		p = rel
	}
	p = filepath.ToSlash(p)
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", fmt.Errorf("%q: %w", p, ErrBadPath)
	}
	clean := strings.Trim(filepath.ToSlash(filepath.Clean(filepath.FromSlash(p))), "/")
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// MemberInfo is one member at a path: the effective role and where it comes from.
type MemberInfo struct {
	User    string   `json:"user"`
	Role    string   `json:"role"`
	Founder bool     `json:"founder,omitempty"`
	From    string   `json:"from"`            // the folder path whose grant gives the role ("" = the folder root)
	Here    bool     `json:"here"`            // granted on this path itself, not inherited
	Group   string   `json:"group,omitempty"` // the group the role comes through
	Devices []string `json:"devices"`         // the user's live devices
	You     bool     `json:"you,omitempty"`   // the user of this device
}

// MembersReport is the answer of Members.
type MembersReport struct {
	Folder     string       `json:"folder"`
	Path       string       `json:"path"`
	Restricted bool         `json:"restricted"` // the path's folder node stops inheritance
	Policy     string       `json:"policy"`     // the manage-access policy
	Members    []MemberInfo `json:"members"`
	NoAccess   []string     `json:"no_access,omitempty"` // paths this device's user sees by name but may not read
}

// snapIndex is a snapshot of a folder's rights state with lookups.
type snapIndex struct {
	s      crdt.Snapshot
	nodes  map[crdt.NodeID]crdt.SnapNode
	groups map[crdt.GroupID]crdt.SnapGroup
}

func indexSnapshot(s crdt.Snapshot) snapIndex {
	x := snapIndex{s: s, nodes: map[crdt.NodeID]crdt.SnapNode{}, groups: map[crdt.GroupID]crdt.SnapGroup{}}
	for _, nd := range s.Nodes {
		x.nodes[nd.ID] = nd
	}
	for _, g := range s.Groups {
		x.groups[g.ID] = g
	}
	return x
}

// path is the slash path of a folder node ("" for the root; ok false for a
// deleted node or one under a deleted node).
func (x snapIndex) path(id crdt.NodeID) (string, bool) {
	var parts []string
	for i := 0; id != crdt.RootNode; i++ {
		nd, ok := x.nodes[id]
		if !ok || nd.Deleted || i > 4096 {
			return "", false
		}
		parts = append(parts, nd.Name)
		id = nd.Parent
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/"), true
}

func (x snapIndex) devicesOf(u crdt.UserID) []string {
	var out []string
	for _, d := range x.s.Devices {
		if d.User == u && d.Live {
			out = append(out, d.Device.String())
		}
	}
	return out
}

// groupByName finds a group by its name (or its ID).
func (x snapIndex) groupByName(name string) (crdt.SnapGroup, error) {
	var found []crdt.SnapGroup
	for _, g := range x.s.Groups {
		if g.Name == name || crdt.Ref(g.ID).String() == name {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return crdt.SnapGroup{}, fmt.Errorf("%q: %w", name, ErrUnknownGroup)
	case 1:
		return found[0], nil
	}
	return crdt.SnapGroup{}, fmt.Errorf("group %q: more than one group has that name; use its ID", name)
}

// user finds a user known to the folder (a founder, a device's user, a
// grant's or a group member's user) by its ID or a unique suffix of it.
func (x snapIndex) user(ref string) (crdt.UserID, error) {
	known := map[crdt.UserID]bool{}
	for _, u := range x.s.Founders {
		known[u] = true
	}
	for _, d := range x.s.Devices {
		known[d.User] = true
	}
	for _, g := range x.s.Grants {
		if g.Principal.User != "" {
			known[g.Principal.User] = true
		}
	}
	for _, g := range x.s.Groups {
		for _, u := range g.Members {
			known[u] = true
		}
	}
	var found []crdt.UserID
	for u := range known {
		if s := u.String(); s == ref {
			return u, nil
		} else if len(ref) >= minFolderSuffix && strings.HasSuffix(s, ref) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%q: %w", ref, ErrUnknownUser)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q: %w; give the full user ID", ref, ErrAmbiguousUser)
}

// principal reads "group:<name>" or a user.
func (x snapIndex) principal(ref string) (crdt.Principal, error) {
	if name, ok := strings.CutPrefix(ref, groupPrefix); ok {
		g, err := x.groupByName(name)
		if err != nil {
			return crdt.Principal{}, err
		}
		return crdt.GroupPrincipal(g.ID), nil
	}
	u, err := x.user(ref)
	if err != nil {
		return crdt.Principal{}, err
	}
	return crdt.UserPrincipal(u), nil
}

func (f *Folder) snapshot() snapIndex {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return indexSnapshot(f.rlog.Snapshot())
}

// Members lists the users with a role at path (a path inside the folder; ""
// is the folder itself), with where each role comes from and their devices.
func (f *Folder) Members(path string) (MembersReport, error) {
	p, err := f.SubPath(path)
	if err != nil {
		return MembersReport{}, err
	}
	f.logMu.Lock()
	members := f.rlog.Members(p)
	node, exact := f.rlog.NodeAt(p)
	x := indexSnapshot(f.rlog.Snapshot())
	f.logMu.Unlock()
	rep := MembersReport{Folder: f.id, Path: p, Policy: policyName(x.s.Policy), Members: []MemberInfo{}}
	rep.Restricted = exact && node != crdt.RootNode && x.nodes[node].Restricted
	me := f.n.User()
	for _, m := range members {
		from, _ := x.path(m.From)
		mi := MemberInfo{User: m.User.String(), Role: m.Role.String(), Founder: m.Founder, From: from, Here: from == p,
			Devices: x.devicesOf(m.User), You: m.User == me}
		if m.Via != "" {
			mi.Group = x.groups[m.Via].Name
		}
		if mi.Devices == nil {
			mi.Devices = []string{}
		}
		rep.Members = append(rep.Members, mi)
	}
	rep.NoAccess = f.NoAccess()
	return rep, nil
}

// NoAccess lists the topmost folders this device's user sees by name but may
// not read (restricted folders it is not staffed in): it receives none of
// their files and shows them as "no access".
func (f *Folder) NoAccess() []string {
	me := f.n.User()
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if _, live := f.rlog.DeviceUser(f.n.id); !live {
		return nil // not a member (yet): Status.Access says why
	}
	x := indexSnapshot(f.rlog.Snapshot())
	var paths []string
	for _, nd := range x.s.Nodes {
		if !nd.Restricted {
			continue
		}
		p, ok := x.path(nd.ID)
		if !ok || p == "" {
			continue
		}
		if f.rlog.Can(me, crdt.ActionSeeName, p) && !f.rlog.Can(me, crdt.ActionRead, p) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []string
	for _, p := range paths {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]+"/") {
			continue
		}
		out = append(out, p)
	}
	return out
}

// access reports this device's standing in the folder: a member, or a
// pending or denied access request (and the request's ID).
func (f *Folder) access() (state, request string) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if _, live := f.rlog.DeviceUser(f.n.id); live {
		return AccessMember, ""
	}
	for _, r := range f.rlog.Snapshot().Requests {
		if r.Device == f.n.id {
			switch r.Status {
			case crdt.RequestPending:
				state, request = AccessPending, crdt.Ref(r.ID).String()
			case crdt.RequestDenied:
				if state == "" {
					state, request = AccessDenied, crdt.Ref(r.ID).String()
				}
			}
		}
	}
	return state, request
}

// isRequester reports whether device p asked for access to the folder (its
// request is pending or was denied): it may read the folder's log, so it learns
// the answer, but no file (the index and chunk servers ask canRead).
func (f *Folder) isRequester(p peer.ID) bool {
	for _, r := range f.rlog.Snapshot().Requests {
		if r.Device == p && r.Status != crdt.RequestApproved {
			return true
		}
	}
	return false
}

// appendOp appends body and turns the log's refusal into one line.
func (f *Folder) appendOp(what string, body crdt.Body) (*crdt.Op, error) {
	op, err := f.AppendOp(body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, ErrRefused, err)
	}
	return op, nil
}

// ensureNode returns the folder node of path, creating the missing folder
// nodes on the way with CreateFolder ops. The path must be a directory on
// disk or a folder the log knows.
func (f *Folder) ensureNode(p string) (crdt.NodeID, error) {
	if p == "" {
		return crdt.RootNode, nil
	}
	f.logMu.Lock()
	id, ok := f.rlog.NodeAt(p)
	f.logMu.Unlock()
	if ok {
		return id, nil
	}
	if st, err := os.Stat(filepath.Join(f.root, filepath.FromSlash(p))); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%q: %w in %s", p, ErrNotADirectory, f.root)
	}
	parts := strings.Split(p, "/")
	cur := crdt.RootNode
	for i, name := range parts {
		f.logMu.Lock()
		next, ok := f.rlog.NodeAt(strings.Join(parts[:i+1], "/"))
		f.logMu.Unlock()
		if ok {
			cur = next
			continue
		}
		op, err := f.appendOp("creating the folder node "+strings.Join(parts[:i+1], "/"), crdt.CreateFolder{Parent: cur, Name: name})
		if err != nil {
			return "", err
		}
		cur = crdt.RefOf(op.ID)
	}
	return cur, nil
}

// Grant gives who ("group:<name>" or a user) role at path; if who already has
// a grant there, it is changed to role.
func (f *Folder) Grant(who string, role crdt.Role, path string) error {
	p, err := f.SubPath(path)
	if err != nil {
		return err
	}
	pr, err := f.snapshot().principal(who)
	if err != nil {
		return err
	}
	node, err := f.ensureNode(p)
	if err != nil {
		return err
	}
	_, err = f.appendOp("grant", crdt.Grant{Principal: pr, Node: node, Role: role})
	return err
}

// Revoke removes who's grant at path (exactly there: an inherited role is
// revoked where it was granted).
func (f *Folder) Revoke(who, path string) error {
	p, err := f.SubPath(path)
	if err != nil {
		return err
	}
	x := f.snapshot()
	pr, err := x.principal(who)
	if err != nil {
		return err
	}
	f.logMu.Lock()
	node, ok := f.rlog.NodeAt(p)
	f.logMu.Unlock()
	granted := slices.ContainsFunc(x.s.Grants, func(g crdt.SnapGrant) bool { return ok && g.Node == node && g.Principal == pr })
	if !granted {
		var where []string
		for _, g := range x.s.Grants {
			if g.Principal == pr {
				if gp, ok := x.path(g.Node); ok {
					where = append(where, "/"+gp)
				}
			}
		}
		if len(where) == 0 {
			return fmt.Errorf("revoke: %s has no grant in this folder", who)
		}
		return fmt.Errorf("revoke: %s has no grant on /%s (its grants are on %s; revoke with --path there)", who, p, strings.Join(where, ", "))
	}
	_, err = f.appendOp("revoke", crdt.Revoke{Principal: pr, Node: node})
	return err
}

// GroupInfo is one group of a folder.
type GroupInfo struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// Groups lists the folder's groups, by name.
func (f *Folder) Groups() []GroupInfo {
	x := f.snapshot()
	out := []GroupInfo{}
	for _, g := range x.s.Groups {
		gi := GroupInfo{ID: crdt.Ref(g.ID).String(), Name: g.Name, Members: []string{}}
		for _, u := range g.Members {
			gi.Members = append(gi.Members, u.String())
		}
		out = append(out, gi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateGroup defines a group named name.
func (f *Folder) CreateGroup(name string) error {
	if name == "" {
		return errors.New("a group needs a name")
	}
	if _, err := f.snapshot().groupByName(name); err == nil {
		return fmt.Errorf("%q: %w", name, ErrGroupExists)
	}
	_, err := f.appendOp("create group", crdt.CreateGroup{Name: name})
	return err
}

// GroupMember adds user to (or, with remove, removes it from) group name.
func (f *Folder) GroupMember(name, user string, remove bool) error {
	x := f.snapshot()
	g, err := x.groupByName(name)
	if err != nil {
		return err
	}
	u, err := x.user(user)
	if err != nil {
		return err
	}
	if remove {
		if !slices.Contains(g.Members, u) {
			return fmt.Errorf("%s is not in group %q", user, name)
		}
		_, err = f.appendOp("remove group member", crdt.RemoveGroupMember{Group: g.ID, User: u})
		return err
	}
	_, err = f.appendOp("add group member", crdt.AddGroupMember{Group: g.ID, User: u})
	return err
}

// Restrict stops inheritance at the subfolder path (or, with undo, lets it
// inherit again). The subfolder gets a folder node in the log if it has none.
func (f *Folder) Restrict(path string, undo bool) error {
	p, err := f.SubPath(path)
	if err != nil {
		return err
	}
	if p == "" {
		return errors.New("the folder root cannot be restricted; name a subfolder")
	}
	if undo {
		f.logMu.Lock()
		node, ok := f.rlog.NodeAt(p)
		f.logMu.Unlock()
		if !ok || !f.snapshot().nodes[node].Restricted {
			return fmt.Errorf("%q is not restricted", p)
		}
		_, err = f.appendOp("unrestrict", crdt.Unrestrict{Node: node})
		return err
	}
	node, err := f.ensureNode(p)
	if err != nil {
		return err
	}
	if f.snapshot().nodes[node].Restricted {
		return fmt.Errorf("%q is already restricted", p)
	}
	_, err = f.appendOp("restrict", crdt.Restrict{Node: node})
	return err
}

// policyNames are the manage-access settings as users type them.
var policyNames = map[string]crdt.Policy{"managers": crdt.PolicyManagers, "owners": crdt.PolicyOwners, "editors": crdt.PolicyEditors}

func policyName(p crdt.Policy) string {
	for k, v := range policyNames {
		if v == p {
			return k
		}
	}
	return fmt.Sprintf("policy(%d)", p)
}

// ParsePolicy reads a manage-access setting.
func ParsePolicy(s string) (crdt.Policy, error) {
	p, ok := policyNames[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("unknown policy %q (managers, owners or editors)", s)
	}
	return p, nil
}

// SetPolicy sets who may manage access to the folder.
func (f *Folder) SetPolicy(p crdt.Policy) error {
	_, err := f.appendOp("set policy", crdt.SetPolicy{Policy: p})
	return err
}

// RequestInfo is one pending access request.
type RequestInfo struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Device string `json:"device"`
	Path   string `json:"path"`
	Role   string `json:"role"`
	Note   string `json:"note,omitempty"`
	Invite string `json:"invite,omitempty"` // the invitation it came with
}

// Requests lists the folder's pending access requests.
func (f *Folder) Requests() []RequestInfo {
	f.logMu.Lock()
	reqs := f.rlog.Requests()
	x := indexSnapshot(f.rlog.Snapshot())
	f.logMu.Unlock()
	out := []RequestInfo{}
	for _, r := range reqs {
		p, _ := x.path(r.Node)
		ri := RequestInfo{ID: crdt.Ref(r.ID).String(), User: r.User.String(), Device: r.Device.String(), Path: p, Role: r.Role.String(), Note: r.Note}
		if r.Invite != "" {
			ri.Invite = crdt.Ref(r.Invite).String()
		}
		out = append(out, ri)
	}
	return out
}

// Settle approves (with role; RoleNone keeps the role asked for) or denies
// the pending request id (its ID or a unique suffix).
func (f *Folder) Settle(id string, approve bool, role crdt.Role) error {
	var match []crdt.Request
	f.logMu.Lock()
	for _, r := range f.rlog.Requests() {
		s := crdt.Ref(r.ID).String()
		if s == id || len(id) >= minFolderSuffix && strings.HasSuffix(s, id) {
			match = append(match, r)
		}
	}
	f.logMu.Unlock()
	switch {
	case len(match) == 0:
		return fmt.Errorf("%q: %w (or it is no longer pending)", id, ErrUnknownRequest)
	case len(match) > 1:
		return fmt.Errorf("%q: more than one request matches; give the full ID", id)
	}
	r := match[0]
	if !approve {
		_, err := f.appendOp("deny", crdt.Deny{Request: r.ID})
		return err
	}
	if role == crdt.RoleNone {
		role = r.Role
	}
	_, err := f.appendOp("approve", crdt.Approve{Request: r.ID, Role: role})
	return err
}

// readScopeLocked fingerprints what this device may read (its liveness and
// the folder nodes its user may read); f.logMu is held. When it changes, the
// index is pulled again from the start: peers withheld what we could not read.
func (f *Folder) readScopeLocked() string {
	me := f.n.User()
	var b strings.Builder
	_, live := f.rlog.DeviceUser(f.n.id)
	fmt.Fprint(&b, live, f.rlog.Can(me, crdt.ActionRead, ""))
	x := indexSnapshot(f.rlog.Snapshot())
	for _, nd := range x.s.Nodes {
		if p, ok := x.path(nd.ID); ok && f.rlog.Can(me, crdt.ActionRead, p) {
			b.WriteString(string(nd.ID))
		}
	}
	return b.String()
}

// rightsChanged forgets how far the index of every author was examined, so
// the next sync round asks peers again for what they withheld before.
func (f *Folder) rightsChanged() {
	f.mu.Lock()
	f.received = map[store.DeviceID]uint64{}
	f.mu.Unlock()
	f.log.Info("this device's read rights changed; pulling the index again")
}

// mayChangeReads reports whether an op of this kind can change what a user
// may read (so AppendOp need not fingerprint the read scope for the others:
// locks, links, invitations, requests, policy, witnesses).
func mayChangeReads(body crdt.Body) bool {
	switch body.(type) {
	case crdt.SetPolicy, crdt.CreateInvite, crdt.RevokeInvite, crdt.RequestAccess, crdt.Deny, crdt.DeclareWitnesses,
		crdt.LockRequest, crdt.LockAck, crdt.LockRelease, crdt.LockBreak, crdt.LockExpire,
		crdt.CreateLink, crdt.SuspendLink, crdt.ResumeLink, crdt.RevokeLink:
		return false
	}
	return true
}

// InviteNeedsApproval reports whether joins with the invitation id (a key's
// Invite bytes) wait for a manager's approval.
func (f *Folder) InviteNeedsApproval(id []byte) bool {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	for _, inv := range f.rlog.Invites() {
		if string(inv.ID) == string(id) {
			return inv.Approval
		}
	}
	return false
}
