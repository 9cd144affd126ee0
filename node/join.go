package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/protocol/wire"
)

// Invitation errors a joiner sees.
var (
	ErrInviteUnknown = errors.New("the invitation is unknown, revoked or used up")
	ErrInviteExpired = errors.New("the invitation has expired")
	ErrNoMember      = errors.New("no member of the folder could be reached at the addresses in the key")
)

// InviteOptions are the terms of an invitation.
type InviteOptions struct {
	Role     crdt.Role
	Path     string        // the subfolder it grants access to; "" is the whole folder
	Uses     uint32        // how many devices may join with it; 0 means 1
	Expires  time.Duration // 0: never
	Approval bool          // joins wait for a manager's approval (also set for a role the issuer cannot grant)
}

// Invite records an invitation in the folder's log and returns its key: only
// the key's public half is in the log; the key string carries the secret.
func (n *Node) Invite(folderID string, o InviteOptions) (join.Key, error) {
	f, err := n.ResolveFolder(folderID) // an ID, a unique ID suffix or the local directory
	if err != nil {
		return join.Key{}, err
	}
	secret, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return join.Key{}, err
	}
	pubRaw, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return join.Key{}, err
	}
	// A subfolder without a folder node in the log gets one (rights.go).
	sub, err := f.SubPath(o.Path)
	if err != nil {
		return join.Key{}, err
	}
	node, err := f.ensureNode(sub)
	if err != nil {
		return join.Key{}, err
	}
	body := crdt.CreateInvite{Key: pubRaw, Role: o.Role, Node: node, MaxUses: max(o.Uses, 1), Approval: o.Approval}
	if o.Expires > 0 {
		body.ExpiresAt = time.Now().Add(o.Expires).UnixMilli()
	}
	op, err := f.AppendOp(body)
	if errors.Is(err, crdt.ErrUnauthorized) && !body.Approval {
		// A role the issuer cannot grant directly: joins with the key become
		// access requests a manager who may grant it settles.
		body.Approval = true
		op, err = f.AppendOp(body)
	}
	if err != nil {
		return join.Key{}, fmt.Errorf("invite: %w", err)
	}
	return join.Key{Folder: f.rlog.Folder(), Invite: []byte(crdt.RefOf(op.ID)), Secret: secret, Addrs: n.inviteAddrs(join.MaxKeyAddrs)}, nil
}

// Join uses an invitation key: it reaches a member through the key's
// addresses, proves the invitation, receives the log, signs its Join op, and
// starts syncing the folder into root.
func (n *Node) Join(ctx context.Context, key join.Key, root string) (*Folder, error) {
	if _, ok := n.Folder(key.Folder.String()); ok {
		return nil, fmt.Errorf("this device already syncs folder %s", key.Folder)
	}
	cert, err := n.DeviceCert()
	if err != nil {
		return nil, err
	}
	invite := crdt.InviteID(key.Invite)
	proof, err := crdt.InviteProof(key.Secret, key.Folder, invite, cert)
	if err != nil {
		return nil, err
	}
	req := join.Request{Folder: key.Folder.String(), Invite: key.Invite, CertUser: cert.User, CertDevice: cert.Device, CertSig: cert.Sig, Proof: proof}
	build := func(raws [][]byte) ([]byte, error) {
		if len(raws) == 0 {
			return nil, errors.New("the member sent an empty log")
		}
		log, err := crdt.New(raws[0], crdt.NewMemStore())
		if err != nil {
			return nil, fmt.Errorf("the member sent a bad genesis: %w", err)
		}
		if log.Folder() != key.Folder {
			return nil, fmt.Errorf("the member sent another folder's log")
		}
		if _, err := log.Merge(raws[1:]); err != nil {
			return nil, err
		}
		op, err := log.Append(n.key, crdt.Join{Invite: invite, Cert: cert, Proof: proof}, time.Now().UnixMilli())
		if err != nil {
			return nil, fmt.Errorf("joining: %w", err)
		}
		return op.Raw, nil
	}
	if _, err := n.LearnRelays(key.Addrs); err != nil {
		n.log.Warn("saving the relays of the invitation", "err", err)
	}
	ctx = allowLimited(ctx) // the inviter may be reachable only through its relay
	var lastErr error = ErrNoMember
	for _, ai := range key.Addrs {
		if ai.ID == n.id {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err := n.host.Connect(cctx, ai)
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("%w: %v", ErrNoMember, err)
			continue
		}
		log, err := join.Open(ctx, n.host, ai.ID, req, build)
		if err != nil {
			lastErr = inviteError(err)
			if errors.Is(err, wire.ErrNoAccess) || errors.Is(err, wire.ErrNotFound) {
				return nil, lastErr // a member said no: another will say the same
			}
			continue
		}
		return n.JoinFolder(root, log)
	}
	return nil, lastErr
}

// inviteError turns a member's refusal into the error the user reads.
func inviteError(err error) error {
	return fmt.Errorf("joining refused: %w", err)
}

// Admit is the member's gate of the join handshake (join.Inviter).
func (n *Node) Admit(req join.Request, remote peer.ID) ([][]byte, error) {
	f, ok := n.Folder(req.Folder)
	if !ok {
		return nil, fmt.Errorf("folder: %w", wire.ErrNotFound)
	}
	cert := crdt.DeviceCert{User: req.CertUser, Device: req.CertDevice, Sig: req.CertSig}
	f.logMu.Lock()
	var inv *crdt.Invite
	for _, i := range f.rlog.Invites() {
		if string(i.ID) == string(req.Invite) {
			inv = &i
			break
		}
	}
	folder := f.rlog.Folder()
	f.logMu.Unlock()
	switch {
	case inv == nil:
		return nil, fmt.Errorf("%v: %w", ErrInviteUnknown, wire.ErrNoAccess)
	case inv.ExpiresAt != 0 && time.Now().UnixMilli() > inv.ExpiresAt:
		return nil, fmt.Errorf("%v: %w", ErrInviteExpired, wire.ErrNoAccess)
	}
	if err := crdt.VerifyInviteProof(*inv, folder, cert, req.Proof); err != nil {
		return nil, fmt.Errorf("%v: %w", err, wire.ErrNoAccess)
	}
	n.log.Info("admitting a device with an invitation", "device", ShortID(remote), "folder", shortFolder(req.Folder))
	return f.Ops(), nil
}

// Complete merges the joiner's Join op (join.Inviter) and checks the log took it.
func (n *Node) Complete(req join.Request, remote peer.ID, raw []byte) error {
	f, ok := n.Folder(req.Folder)
	if !ok {
		return fmt.Errorf("folder: %w", wire.ErrNotFound)
	}
	op, err := crdt.DecodeOp(raw)
	if err != nil {
		return fmt.Errorf("%v: %w", err, wire.ErrBadRequest)
	}
	if op.Author != remote || op.Kind != (crdt.Join{}).Kind() {
		return fmt.Errorf("not a Join op by the joining device: %w", wire.ErrBadRequest)
	}
	if _, err := f.MergeOps([][]byte{raw}); err != nil {
		return err
	}
	var valid, known bool
	var reason error
	f.Log(func(l *crdt.Log) error {
		valid, reason, known = l.Status(op.ID)
		return nil
	})
	if !known || !valid {
		return fmt.Errorf("the log refused the join (%v): %w", reason, wire.ErrNoAccess)
	}
	return nil
}
