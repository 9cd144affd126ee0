package crdt

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// Role is a rank in a folder. Higher roles include every right of the lower
// ones. Values are part of the wire format.
type Role uint8

// The roles, lowest to highest. RoleFounder is never granted: it is the rank
// of the owners named in the genesis op, and only matters for revoking owners.
const (
	RoleNone      Role = 0
	RoleRelay     Role = 1 // store and forward; may not read (reserved for encrypted relays)
	RoleViewer    Role = 2 // "Can view"
	RoleEditor    Role = 3 // "Can edit"
	RoleOrganizer Role = 4 // "Organize": shape the tree, restrict subfolders
	RoleManager   Role = 5 // "Collaborate": members, invitations, requests, links of its scope
	RoleOwner     Role = 6 // everything, the manage-access policy, deleting the share
	RoleFounder   Role = 7 // an owner named in genesis
)

var roleNames = [...]string{"none", "relay", "viewer", "editor", "organizer", "manager", "owner", "founder"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", r)
}

// Action is something a user may or may not do at a path.
type Action uint8

// The actions Can answers for.
const (
	ActionStore         Action = iota + 1 // hold and forward the folder's data (relay)
	ActionRead                            // read files
	ActionSeeName                         // see a folder's name (restricted folders stay visible by name)
	ActionWrite                           // write files
	ActionLock                            // request and release locks
	ActionOrganize                        // create, move, rename, delete folders; restrict/unrestrict below
	ActionManage                          // grant/revoke roles below one's own, invite, approve, groups, links (per policy)
	ActionBreakLock                       // break someone else's lock
	ActionSeeQuarantine                   // see quarantined versions
	ActionSetPolicy                       // set the manage-access policy, declare witnesses
	ActionDeleteShare                     // delete the share
)

var actionNames = map[Action]string{
	ActionStore: "store", ActionRead: "read", ActionSeeName: "see-name", ActionWrite: "write",
	ActionLock: "lock", ActionOrganize: "organize", ActionManage: "manage", ActionBreakLock: "break-lock",
	ActionSeeQuarantine: "see-quarantine", ActionSetPolicy: "set-policy", ActionDeleteShare: "delete-share",
}

func (a Action) String() string {
	if n, ok := actionNames[a]; ok {
		return n
	}
	return fmt.Sprintf("Action(%d)", a)
}

// Actions lists every action, for tables and tests.
var Actions = []Action{ActionStore, ActionRead, ActionSeeName, ActionWrite, ActionLock, ActionOrganize,
	ActionManage, ActionBreakLock, ActionSeeQuarantine, ActionSetPolicy, ActionDeleteShare}

// MinRole is the lowest role that may do a under the given manage-access
// policy. This is the rights table of the package doc.
func MinRole(a Action, p Policy) Role {
	switch a {
	case ActionStore:
		return RoleRelay
	case ActionRead, ActionSeeName:
		return RoleViewer
	case ActionWrite, ActionLock:
		return RoleEditor
	case ActionOrganize:
		return RoleOrganizer
	case ActionManage:
		switch p {
		case PolicyOwners:
			return RoleOwner
		case PolicyEditors:
			return RoleEditor
		}
		return RoleManager
	case ActionBreakLock, ActionSeeQuarantine:
		return RoleManager
	case ActionSetPolicy, ActionDeleteShare:
		return RoleOwner
	}
	return RoleFounder + 1 // unknown actions: nobody
}

// mayAssign reports whether someone of rank may grant, or take away, role.
// Strictly below one's own rank; owners may also grant owner; only founders
// take owner away (LOG-RULES R4).
func mayGrant(rank, role Role) bool {
	return role < rank || (role == RoleOwner && rank >= RoleOwner)
}

func mayTake(rank, role Role) bool { return role < rank }

// splitPath splits a slash-separated folder-relative path. "" and "/" are
// the root. It refuses "." and ".." components and empty ones in the middle.
func splitPath(p string) ([]string, bool) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if s == "" || s == "." || s == ".." {
			return nil, false
		}
	}
	return parts, true
}

func inviteKey(b []byte) (crypto.PubKey, error) {
	pub, err := crypto.UnmarshalPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: invite key: %v", ErrMalformed, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: invite key is not Ed25519", ErrMalformed)
	}
	return pub, nil
}
