package crdt

import (
	"sort"

	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Snapshot is the materialized state in plain, sorted form: two logs with the
// same op set have byte-identical snapshots (and digests). Tests and the
// simulation harness compare them.
type Snapshot struct {
	Deleted   bool         `cbor:"1,keyasint"`
	Policy    Policy       `cbor:"2,keyasint"`
	Founders  []UserID     `cbor:"3,keyasint"`
	Devices   []SnapDevice `cbor:"4,keyasint"`
	Groups    []SnapGroup  `cbor:"5,keyasint"`
	Nodes     []SnapNode   `cbor:"6,keyasint"`
	Grants    []SnapGrant  `cbor:"7,keyasint"`
	Invites   []SnapInvite `cbor:"8,keyasint"`
	Requests  []Request    `cbor:"9,keyasint"`
	Witnesses []peer.ID    `cbor:"10,keyasint"`
	Locks     []SnapLock   `cbor:"11,keyasint"`
	Links     []SnapLink   `cbor:"12,keyasint"`
}

// Snapshot parts.
type (
	SnapDevice struct {
		Device peer.ID
		User   UserID
		Live   bool
	}
	SnapGroup struct {
		ID      GroupID
		Name    string
		Members []UserID
	}
	SnapNode struct {
		ID         NodeID
		Parent     NodeID
		Name       string
		Deleted    bool
		Restricted bool
	}
	SnapGrant struct {
		Node      NodeID
		Principal Principal
		Role      Role
	}
	SnapInvite struct {
		ID      InviteID
		Issuer  UserID
		Role    Role
		Node    NodeID
		Uses    uint32
		Revoked bool
	}
	SnapLock struct {
		ID      LockID
		Path    string
		User    UserID
		Acks    int
		Granted bool
		Fence   uint64
		Ended   bool
	}
	SnapLink struct {
		ID        LinkID
		Path      string
		Role      Role
		Suspended bool
		Revoked   bool
	}
)

// Snapshot returns the state in plain sorted form.
func (l *Log) Snapshot() Snapshot { return l.State().Snapshot() }

// Digest is a BLAKE3-256 multihash of the snapshot's canonical encoding.
func (l *Log) Digest() []byte { return l.State().Digest() }

// Digest: see Log.Digest.
func (s *State) Digest() []byte {
	raw, err := encMode.Marshal(s.Snapshot())
	if err != nil {
		panic(err) // plain data always encodes
	}
	h, _ := mh.Sum(raw, mh.BLAKE3, 32)
	return h
}

// Snapshot: see Log.Snapshot.
func (s *State) Snapshot() Snapshot {
	out := Snapshot{Deleted: s.deleted, Policy: s.Policy(), Witnesses: append([]peer.ID(nil), s.witnesses...)}
	for u, r := range s.founders {
		if r.on() {
			out.Founders = append(out.Founders, u)
		}
	}
	sort.Slice(out.Founders, func(i, j int) bool { return out.Founders[i] < out.Founders[j] })
	for d, dv := range s.devices {
		out.Devices = append(out.Devices, SnapDevice{Device: d, User: dv.user, Live: dv.reg.on()})
	}
	sort.Slice(out.Devices, func(i, j int) bool { return out.Devices[i].Device < out.Devices[j].Device })
	for id, g := range s.groups {
		sg := SnapGroup{ID: id, Name: g.name}
		for u, r := range g.members {
			if r.on() {
				sg.Members = append(sg.Members, u)
			}
		}
		sort.Slice(sg.Members, func(i, j int) bool { return sg.Members[i] < sg.Members[j] })
		out.Groups = append(out.Groups, sg)
	}
	sort.Slice(out.Groups, func(i, j int) bool { return out.Groups[i].ID < out.Groups[j].ID })
	for id, nd := range s.nodes {
		out.Nodes = append(out.Nodes, SnapNode{ID: id, Parent: nd.parent, Name: nd.name, Deleted: nd.deleted,
			Restricted: switchOn(nd.restricted)})
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	for n, g := range s.grants {
		for u, r := range g.users {
			if v := r.value(); v != RoleNone {
				out.Grants = append(out.Grants, SnapGrant{Node: n, Principal: UserPrincipal(u), Role: v})
			}
		}
		for gid, r := range g.groups {
			if v := r.value(); v != RoleNone {
				out.Grants = append(out.Grants, SnapGrant{Node: n, Principal: GroupPrincipal(gid), Role: v})
			}
		}
	}
	sort.Slice(out.Grants, func(i, j int) bool {
		a, b := out.Grants[i], out.Grants[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Principal.key() < b.Principal.key()
	})
	for id, inv := range s.invites {
		out.Invites = append(out.Invites, SnapInvite{ID: id, Issuer: inv.issuer, Role: inv.body.Role,
			Node: inv.body.Node, Uses: inv.uses, Revoked: inv.revoked})
	}
	sort.Slice(out.Invites, func(i, j int) bool { return out.Invites[i].ID < out.Invites[j].ID })
	for id, r := range s.requests {
		out.Requests = append(out.Requests, Request{ID: id, User: r.cert.User, Device: r.cert.Device, Node: r.node,
			Role: r.role, Note: r.note, Invite: r.invite, Status: r.status})
	}
	sort.Slice(out.Requests, func(i, j int) bool { return out.Requests[i].ID < out.Requests[j].ID })
	for id, r := range s.reqs {
		out.Locks = append(out.Locks, SnapLock{ID: id, Path: r.path, User: r.user, Acks: len(r.acks),
			Granted: r.granted, Fence: r.fence, Ended: r.ended})
	}
	sort.Slice(out.Locks, func(i, j int) bool { return out.Locks[i].ID < out.Locks[j].ID })
	for id, k := range s.links {
		out.Links = append(out.Links, SnapLink{ID: id, Path: k.body.Path, Role: k.body.Role,
			Suspended: switchOn(k.suspended), Revoked: k.revoked})
	}
	sort.Slice(out.Links, func(i, j int) bool { return out.Links[i].ID < out.Links[j].ID })
	return out
}
