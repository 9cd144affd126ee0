package crdt

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Kind says what an op does. See kinds_gen.go for the values.
type Kind uint8

func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Body is the kind-specific payload of an op. Every payload type below is a
// Body; build one and pass it to Log.Append.
type Body interface {
	Kind() Kind
	validate() error
}

// Ref names a thing created by an op (folder node, group, invitation, access
// request, lock request, share link): the binary CID of the creating op
// (cid.Cid.KeyString). The empty Ref is the folder's root node.
type Ref string

// RefOf returns the Ref of the op with the given CID.
func RefOf(c cid.Cid) Ref { return Ref(c.KeyString()) }

// Cid parses r back into a CID.
func (r Ref) Cid() (cid.Cid, error) { return cid.Cast([]byte(r)) }

func (r Ref) String() string {
	if r == "" {
		return "root"
	}
	c, err := r.Cid()
	if err != nil {
		return fmt.Sprintf("bad-ref(%x)", string(r))
	}
	return c.String()
}

// Names for the things a Ref can point at.
type (
	NodeID    = Ref // a folder node of the share's tree; "" is the root
	GroupID   = Ref
	InviteID  = Ref
	RequestID = Ref
	LinkID    = Ref
	LockID    = Ref // a lock request
)

// RootNode is the share's root folder.
const RootNode NodeID = ""

// UserID is a user's identity: the peer ID form of the user's Ed25519 key.
type UserID = peer.ID

// Principal is who a role is granted to: exactly one of User or Group.
type Principal struct {
	User  UserID  `cbor:"1,keyasint,omitempty"`
	Group GroupID `cbor:"2,keyasint,omitempty"`
}

// UserPrincipal and GroupPrincipal build principals.
func UserPrincipal(u UserID) Principal   { return Principal{User: u} }
func GroupPrincipal(g GroupID) Principal { return Principal{Group: g} }

func (p Principal) key() string {
	if p.Group != "" {
		return "g" + string(p.Group)
	}
	return "u" + string(p.User)
}

func (p Principal) validate() error {
	if (p.User == "") == (p.Group == "") {
		return fmt.Errorf("%w: principal needs exactly one of user and group", ErrMalformed)
	}
	if p.User != "" {
		if _, err := idKey(p.User); err != nil {
			return fmt.Errorf("%w: principal user: %v", ErrMalformed, err)
		}
		return nil
	}
	return validRef(p.Group, false)
}

func validRef(r Ref, rootOK bool) error {
	if r == "" {
		if rootOK {
			return nil
		}
		return fmt.Errorf("%w: empty reference", ErrMalformed)
	}
	c, err := r.Cid()
	if err != nil || c.KeyString() != string(r) {
		return fmt.Errorf("%w: bad reference", ErrMalformed)
	}
	return nil
}

func validName(s string) error {
	if s == "" || len(s) > MaxNameLen || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%w: bad name %q", ErrMalformed, s)
	}
	return nil
}

func validPath(s string) error {
	if len(s) > MaxPathLen || strings.Contains(s, "\x00") {
		return fmt.Errorf("%w: bad path", ErrMalformed)
	}
	if _, ok := splitPath(s); !ok {
		return fmt.Errorf("%w: bad path %q", ErrMalformed, s)
	}
	return nil
}

func validGrantRole(r Role) error {
	if r < RoleRelay || r > RoleOwner {
		return fmt.Errorf("%w: bad role %d", ErrMalformed, r)
	}
	return nil
}

// DeviceCert is a user's statement that a device acts for it: the user key
// signs (domain, user, device). It names no folder, so one certificate serves
// every folder the user is in.
type DeviceCert struct {
	User   UserID  `cbor:"1,keyasint"`
	Device peer.ID `cbor:"2,keyasint"`
	Sig    []byte  `cbor:"3,keyasint"`
}

func certMessage(user UserID, device peer.ID) []byte {
	var b bytes.Buffer
	b.WriteString(domainDeviceCert)
	writeLV(&b, []byte(user))
	writeLV(&b, []byte(device))
	return b.Bytes()
}

func writeLV(b *bytes.Buffer, v []byte) {
	var n [4]byte
	n[0], n[1], n[2], n[3] = byte(len(v)>>24), byte(len(v)>>16), byte(len(v)>>8), byte(len(v))
	b.Write(n[:])
	b.Write(v)
}

// CertifyDevice makes the certificate by which user vouches for device.
func CertifyDevice(user Signer, device peer.ID) (DeviceCert, error) {
	uid, err := peer.IDFromPublicKey(user.GetPublic())
	if err != nil {
		return DeviceCert{}, fmt.Errorf("crdt: user key: %w", err)
	}
	sig, err := user.Sign(certMessage(uid, device))
	if err != nil {
		return DeviceCert{}, fmt.Errorf("crdt: signing device cert: %w", err)
	}
	return DeviceCert{User: uid, Device: device, Sig: sig}, nil
}

// Verify checks the certificate's signature by its user key.
func (c DeviceCert) Verify() error {
	pub, err := idKey(c.User)
	if err != nil {
		return fmt.Errorf("%w: cert user: %v", ErrMalformed, err)
	}
	if _, err := idKey(c.Device); err != nil {
		return fmt.Errorf("%w: cert device: %v", ErrMalformed, err)
	}
	ok, err := pub.Verify(certMessage(c.User, c.Device), c.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: device certificate", ErrBadSignature)
	}
	return nil
}

// InviteProof is what a joiner signs with the invitation's one-time key: it
// binds the invitation to the joiner's user and device, so a stolen proof is
// useless to anyone else (localfirst/auth's binding; LOG-RULES R11).
func InviteProof(inviteKey Signer, folder cid.Cid, invite InviteID, cert DeviceCert) ([]byte, error) {
	return inviteKey.Sign(inviteProofMessage(folder, invite, cert))
}

func inviteProofMessage(folder cid.Cid, invite InviteID, cert DeviceCert) []byte {
	var b bytes.Buffer
	b.WriteString(domainInviteProof)
	writeLV(&b, folder.Bytes())
	writeLV(&b, []byte(invite))
	writeLV(&b, []byte(cert.User))
	writeLV(&b, []byte(cert.Device))
	return b.Bytes()
}

// Genesis creates the folder. Its CID is the folder ID. Founders are the
// owners it names; each comes with one certified device. The author must be
// one of those devices.
type Genesis struct {
	Name     string       `cbor:"1,keyasint"`
	Founders []DeviceCert `cbor:"2,keyasint"`
	Nonce    []byte       `cbor:"3,keyasint,omitempty"`
}

// AddDevice certifies one more device for a user who is already known to the
// folder. The author is a live device of that user, or the new device itself.
type AddDevice struct {
	Cert DeviceCert `cbor:"1,keyasint"`
}

// RemoveDevice decertifies a device (by its own user, or an owner).
type RemoveDevice struct {
	Device peer.ID `cbor:"1,keyasint"`
}

// CreateGroup makes a group; its ID is the op's CID.
type CreateGroup struct {
	Name string `cbor:"1,keyasint"`
}

// AddGroupMember and RemoveGroupMember change a group's members.
type AddGroupMember struct {
	Group GroupID `cbor:"1,keyasint"`
	User  UserID  `cbor:"2,keyasint"`
}

type RemoveGroupMember struct {
	Group GroupID `cbor:"1,keyasint"`
	User  UserID  `cbor:"2,keyasint"`
}

// Grant gives Principal the Role on the folder Node and below.
type Grant struct {
	Principal Principal `cbor:"1,keyasint"`
	Node      NodeID    `cbor:"2,keyasint,omitempty"`
	Role      Role      `cbor:"3,keyasint"`
}

// ChangeRole sets an existing grant to another role.
type ChangeRole struct {
	Principal Principal `cbor:"1,keyasint"`
	Node      NodeID    `cbor:"2,keyasint,omitempty"`
	Role      Role      `cbor:"3,keyasint"`
}

// Revoke removes Principal's grant on Node.
type Revoke struct {
	Principal Principal `cbor:"1,keyasint"`
	Node      NodeID    `cbor:"2,keyasint,omitempty"`
}

// Renounce drops the author's own grant on Node; with Founder set, the
// author's founder status instead.
type Renounce struct {
	Node    NodeID `cbor:"1,keyasint,omitempty"`
	Founder bool   `cbor:"2,keyasint,omitempty"`
}

// Restrict stops inheritance at Node: only grants at or below it (and
// founders) apply inside. Unrestrict lifts that.
type Restrict struct {
	Node NodeID `cbor:"1,keyasint"`
}

type Unrestrict struct {
	Node NodeID `cbor:"1,keyasint"`
}

// CreateFolder makes a folder node named Name under Parent; its ID is the
// op's CID.
type CreateFolder struct {
	Parent NodeID `cbor:"1,keyasint,omitempty"`
	Name   string `cbor:"2,keyasint"`
}

// MoveFolder moves and/or renames a folder node. A move that would put a
// node under itself is skipped when the tree is built.
type MoveFolder struct {
	Node      NodeID `cbor:"1,keyasint"`
	NewParent NodeID `cbor:"2,keyasint,omitempty"`
	NewName   string `cbor:"3,keyasint"`
}

// DeleteFolder removes a folder node (and so its subtree) from the tree.
type DeleteFolder struct {
	Node NodeID `cbor:"1,keyasint"`
}

// Policy says who may manage access (members, invitations, requests, links).
type Policy uint8

// The manage-access policies. Values are part of the wire format.
const (
	PolicyManagers Policy = 0 // managers and owners (the default)
	PolicyOwners   Policy = 1 // owners only
	PolicyEditors  Policy = 2 // every member with write access (editor and up)
)

// SetPolicy sets the folder's manage-access policy.
type SetPolicy struct {
	Policy Policy `cbor:"1,keyasint"`
}

// CreateInvite puts an invitation's one-time public key in the log. The
// invitation's ID is the op's CID.
type CreateInvite struct {
	Key       []byte `cbor:"1,keyasint"` // marshalled libp2p Ed25519 public key
	Role      Role   `cbor:"2,keyasint"`
	Node      NodeID `cbor:"3,keyasint,omitempty"`
	ExpiresAt int64  `cbor:"4,keyasint,omitempty"` // Unix ms; 0 = none
	MaxUses   uint32 `cbor:"5,keyasint"`
	Approval  bool   `cbor:"6,keyasint,omitempty"` // a join becomes an access request
}

// RevokeInvite ends an invitation.
type RevokeInvite struct {
	Invite InviteID `cbor:"1,keyasint"`
}

// Join uses an invitation. The author is the joiner's new device (Cert.Device);
// Proof is InviteProof by the invitation key.
type Join struct {
	Invite InviteID   `cbor:"1,keyasint"`
	Cert   DeviceCert `cbor:"2,keyasint"`
	Proof  []byte     `cbor:"3,keyasint"`
}

// RequestAccess asks for Role on Node. The author is the requester's device.
type RequestAccess struct {
	Cert DeviceCert `cbor:"1,keyasint"`
	Node NodeID     `cbor:"2,keyasint,omitempty"`
	Role Role       `cbor:"3,keyasint"`
	Note string     `cbor:"4,keyasint,omitempty"`
}

// Approve grants a pending request (with Role, which may differ from the one
// asked); Deny refuses it.
type Approve struct {
	Request RequestID `cbor:"1,keyasint"`
	Role    Role      `cbor:"2,keyasint"`
}

type Deny struct {
	Request RequestID `cbor:"1,keyasint"`
}

// DeclareWitnesses sets the devices whose majority grants locks.
type DeclareWitnesses struct {
	Devices []peer.ID `cbor:"1,keyasint"`
}

// LockRequest asks for an exclusive lock on the file at Path for LeaseSecs.
type LockRequest struct {
	Path      string `cbor:"1,keyasint"`
	LeaseSecs uint32 `cbor:"2,keyasint"`
}

// LockAck is a witness's acknowledgement of a lock request.
type LockAck struct {
	Request LockID `cbor:"1,keyasint"`
}

// LockRelease ends the author's own lock (or withdraws its request).
type LockRelease struct {
	Request LockID `cbor:"1,keyasint"`
}

// LockBreak ends someone else's lock (managers and up).
type LockBreak struct {
	Request LockID `cbor:"1,keyasint"`
}

// LockExpire is a witness saying the lease ran out on its own clock. The lock
// ends when a majority of witnesses have said so.
type LockExpire struct {
	Request LockID `cbor:"1,keyasint"`
}

// CreateLink makes a share link for Path (a file or folder). Verifier is
// LinkVerifier(password, salt) or empty for no password.
type CreateLink struct {
	Path          string `cbor:"1,keyasint"`
	Role          Role   `cbor:"2,keyasint"` // RoleViewer or RoleEditor
	ExpiresAt     int64  `cbor:"3,keyasint,omitempty"`
	Salt          []byte `cbor:"4,keyasint,omitempty"`
	Verifier      []byte `cbor:"5,keyasint,omitempty"`
	DownloadLimit uint32 `cbor:"6,keyasint,omitempty"`
}

// SuspendLink, ResumeLink and RevokeLink change a link's state.
type SuspendLink struct {
	Link LinkID `cbor:"1,keyasint"`
}

type ResumeLink struct {
	Link LinkID `cbor:"1,keyasint"`
}

type RevokeLink struct {
	Link LinkID `cbor:"1,keyasint"`
}

// LinkDownload records one completed download through a share link, by the
// device that served it: the count of these ops is what a download limit
// compares with, on every device.
type LinkDownload struct {
	Link LinkID `cbor:"1,keyasint"`
}

// DeleteShare ends the share: no op after it is valid.
type DeleteShare struct{}

func decodeBody(k Kind, raw cbor.RawMessage) (Body, error) {
	b, err := newBody(k)
	if err != nil {
		return nil, err
	}
	if err := decMode.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrMalformed, k, err)
	}
	body := deref(b)
	if err := body.validate(); err != nil {
		return nil, err
	}
	return body, nil
}

func (g Genesis) validate() error {
	if err := validName(g.Name); err != nil {
		return err
	}
	if len(g.Founders) == 0 || len(g.Founders) > MaxWitnesses {
		return fmt.Errorf("%w: genesis needs 1..%d founders", ErrMalformed, MaxWitnesses)
	}
	if len(g.Nonce) > 64 {
		return fmt.Errorf("%w: nonce too long", ErrMalformed)
	}
	for _, c := range g.Founders {
		if err := c.Verify(); err != nil {
			return err
		}
	}
	return nil
}

func (b AddDevice) validate() error    { return b.Cert.Verify() }
func (b RemoveDevice) validate() error { return validPeer(b.Device) }
func (b CreateGroup) validate() error  { return validName(b.Name) }
func (b AddGroupMember) validate() error {
	if err := validRef(b.Group, false); err != nil {
		return err
	}
	return validPeer(b.User)
}
func (b RemoveGroupMember) validate() error {
	return AddGroupMember(b).validate()
}
func (b Grant) validate() error {
	if err := b.Principal.validate(); err != nil {
		return err
	}
	if err := validRef(b.Node, true); err != nil {
		return err
	}
	return validGrantRole(b.Role)
}
func (b ChangeRole) validate() error { return Grant(b).validate() }
func (b Revoke) validate() error {
	if err := b.Principal.validate(); err != nil {
		return err
	}
	return validRef(b.Node, true)
}
func (b Renounce) validate() error {
	if b.Founder && b.Node != "" {
		return fmt.Errorf("%w: founder renunciation names no node", ErrMalformed)
	}
	return validRef(b.Node, true)
}
func (b Restrict) validate() error   { return validRef(b.Node, false) }
func (b Unrestrict) validate() error { return validRef(b.Node, false) }
func (b CreateFolder) validate() error {
	if err := validRef(b.Parent, true); err != nil {
		return err
	}
	return validName(b.Name)
}
func (b MoveFolder) validate() error {
	if err := validRef(b.Node, false); err != nil {
		return err
	}
	if err := validRef(b.NewParent, true); err != nil {
		return err
	}
	return validName(b.NewName)
}
func (b DeleteFolder) validate() error { return validRef(b.Node, false) }
func (b SetPolicy) validate() error {
	if b.Policy > PolicyEditors {
		return fmt.Errorf("%w: bad policy %d", ErrMalformed, b.Policy)
	}
	return nil
}
func (b CreateInvite) validate() error {
	if _, err := inviteKey(b.Key); err != nil {
		return err
	}
	if err := validGrantRole(b.Role); err != nil {
		return err
	}
	if b.MaxUses == 0 || b.MaxUses > MaxInviteUses {
		return fmt.Errorf("%w: max uses %d", ErrMalformed, b.MaxUses)
	}
	return validRef(b.Node, true)
}
func (b RevokeInvite) validate() error { return validRef(b.Invite, false) }
func (b Join) validate() error {
	if err := validRef(b.Invite, false); err != nil {
		return err
	}
	if len(b.Proof) > 256 {
		return fmt.Errorf("%w: proof too long", ErrMalformed)
	}
	return b.Cert.Verify()
}
func (b RequestAccess) validate() error {
	if err := validRef(b.Node, true); err != nil {
		return err
	}
	if err := validGrantRole(b.Role); err != nil {
		return err
	}
	if len(b.Note) > MaxNoteLen {
		return fmt.Errorf("%w: note too long", ErrMalformed)
	}
	return b.Cert.Verify()
}
func (b Approve) validate() error {
	if err := validRef(b.Request, false); err != nil {
		return err
	}
	return validGrantRole(b.Role)
}
func (b Deny) validate() error { return validRef(b.Request, false) }
func (b DeclareWitnesses) validate() error {
	if len(b.Devices) == 0 || len(b.Devices) > MaxWitnesses {
		return fmt.Errorf("%w: witness set of %d", ErrMalformed, len(b.Devices))
	}
	seen := map[peer.ID]bool{}
	for _, d := range b.Devices {
		if err := validPeer(d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("%w: duplicate witness", ErrMalformed)
		}
		seen[d] = true
	}
	return nil
}
func (b LockRequest) validate() error {
	if b.LeaseSecs == 0 || b.LeaseSecs > MaxLeaseSecs {
		return fmt.Errorf("%w: lease %d s", ErrMalformed, b.LeaseSecs)
	}
	if b.Path == "" {
		return fmt.Errorf("%w: lock on the root", ErrMalformed)
	}
	return validPath(b.Path)
}
func (b LockAck) validate() error     { return validRef(b.Request, false) }
func (b LockRelease) validate() error { return validRef(b.Request, false) }
func (b LockBreak) validate() error   { return validRef(b.Request, false) }
func (b LockExpire) validate() error  { return validRef(b.Request, false) }
func (b CreateLink) validate() error {
	if b.Role != RoleViewer && b.Role != RoleEditor {
		return fmt.Errorf("%w: link role %d", ErrMalformed, b.Role)
	}
	if len(b.Salt) > 64 || len(b.Verifier) > 64 || (len(b.Verifier) > 0) != (len(b.Salt) > 0) {
		return fmt.Errorf("%w: link verifier", ErrMalformed)
	}
	return validPath(b.Path)
}
func (b SuspendLink) validate() error  { return validRef(b.Link, false) }
func (b ResumeLink) validate() error   { return validRef(b.Link, false) }
func (b RevokeLink) validate() error   { return validRef(b.Link, false) }
func (DeleteShare) validate() error    { return nil }
func (b LinkDownload) validate() error { return validRef(b.Link, false) }

func validPeer(id peer.ID) error {
	if _, err := idKey(id); err != nil {
		return fmt.Errorf("%w: peer id: %v", ErrMalformed, err)
	}
	return nil
}
