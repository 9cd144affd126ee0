// Kind table: one line per op kind. Keep in step with kinds.go.

package crdt

import "fmt"

// The op kinds. Values are part of the wire format: never renumber.
const (
	KindGenesis           Kind = 1
	KindAddDevice         Kind = 2
	KindRemoveDevice      Kind = 3
	KindCreateGroup       Kind = 4
	KindAddGroupMember    Kind = 5
	KindRemoveGroupMember Kind = 6
	KindGrant             Kind = 7
	KindChangeRole        Kind = 8
	KindRevoke            Kind = 9
	KindRenounce          Kind = 10
	KindRestrict          Kind = 11
	KindUnrestrict        Kind = 12
	KindCreateFolder      Kind = 13
	KindMoveFolder        Kind = 14
	KindDeleteFolder      Kind = 15
	KindSetPolicy         Kind = 16
	KindCreateInvite      Kind = 17
	KindRevokeInvite      Kind = 18
	KindJoin              Kind = 19
	KindRequestAccess     Kind = 20
	KindApprove           Kind = 21
	KindDeny              Kind = 22
	KindDeclareWitnesses  Kind = 23
	KindLockRequest       Kind = 24
	KindLockAck           Kind = 25
	KindLockRelease       Kind = 26
	KindLockBreak         Kind = 27
	KindLockExpire        Kind = 28
	KindCreateLink        Kind = 29
	KindSuspendLink       Kind = 30
	KindResumeLink        Kind = 31
	KindRevokeLink        Kind = 32
	KindDeleteShare       Kind = 33
	KindLinkDownload      Kind = 34
)

var kindNames = map[Kind]string{
	KindGenesis:           "Genesis",
	KindAddDevice:         "AddDevice",
	KindRemoveDevice:      "RemoveDevice",
	KindCreateGroup:       "CreateGroup",
	KindAddGroupMember:    "AddGroupMember",
	KindRemoveGroupMember: "RemoveGroupMember",
	KindGrant:             "Grant",
	KindChangeRole:        "ChangeRole",
	KindRevoke:            "Revoke",
	KindRenounce:          "Renounce",
	KindRestrict:          "Restrict",
	KindUnrestrict:        "Unrestrict",
	KindCreateFolder:      "CreateFolder",
	KindMoveFolder:        "MoveFolder",
	KindDeleteFolder:      "DeleteFolder",
	KindSetPolicy:         "SetPolicy",
	KindCreateInvite:      "CreateInvite",
	KindRevokeInvite:      "RevokeInvite",
	KindJoin:              "Join",
	KindRequestAccess:     "RequestAccess",
	KindApprove:           "Approve",
	KindDeny:              "Deny",
	KindDeclareWitnesses:  "DeclareWitnesses",
	KindLockRequest:       "LockRequest",
	KindLockAck:           "LockAck",
	KindLockRelease:       "LockRelease",
	KindLockBreak:         "LockBreak",
	KindLockExpire:        "LockExpire",
	KindCreateLink:        "CreateLink",
	KindSuspendLink:       "SuspendLink",
	KindResumeLink:        "ResumeLink",
	KindRevokeLink:        "RevokeLink",
	KindDeleteShare:       "DeleteShare",
	KindLinkDownload:      "LinkDownload",
}

// Kind reports KindGenesis.
func (Genesis) Kind() Kind { return KindGenesis }

// Kind reports KindAddDevice.
func (AddDevice) Kind() Kind { return KindAddDevice }

// Kind reports KindRemoveDevice.
func (RemoveDevice) Kind() Kind { return KindRemoveDevice }

// Kind reports KindCreateGroup.
func (CreateGroup) Kind() Kind { return KindCreateGroup }

// Kind reports KindAddGroupMember.
func (AddGroupMember) Kind() Kind { return KindAddGroupMember }

// Kind reports KindRemoveGroupMember.
func (RemoveGroupMember) Kind() Kind { return KindRemoveGroupMember }

// Kind reports KindGrant.
func (Grant) Kind() Kind { return KindGrant }

// Kind reports KindChangeRole.
func (ChangeRole) Kind() Kind { return KindChangeRole }

// Kind reports KindRevoke.
func (Revoke) Kind() Kind { return KindRevoke }

// Kind reports KindRenounce.
func (Renounce) Kind() Kind { return KindRenounce }

// Kind reports KindRestrict.
func (Restrict) Kind() Kind { return KindRestrict }

// Kind reports KindUnrestrict.
func (Unrestrict) Kind() Kind { return KindUnrestrict }

// Kind reports KindCreateFolder.
func (CreateFolder) Kind() Kind { return KindCreateFolder }

// Kind reports KindMoveFolder.
func (MoveFolder) Kind() Kind { return KindMoveFolder }

// Kind reports KindDeleteFolder.
func (DeleteFolder) Kind() Kind { return KindDeleteFolder }

// Kind reports KindSetPolicy.
func (SetPolicy) Kind() Kind { return KindSetPolicy }

// Kind reports KindCreateInvite.
func (CreateInvite) Kind() Kind { return KindCreateInvite }

// Kind reports KindRevokeInvite.
func (RevokeInvite) Kind() Kind { return KindRevokeInvite }

// Kind reports KindJoin.
func (Join) Kind() Kind { return KindJoin }

// Kind reports KindRequestAccess.
func (RequestAccess) Kind() Kind { return KindRequestAccess }

// Kind reports KindApprove.
func (Approve) Kind() Kind { return KindApprove }

// Kind reports KindDeny.
func (Deny) Kind() Kind { return KindDeny }

// Kind reports KindDeclareWitnesses.
func (DeclareWitnesses) Kind() Kind { return KindDeclareWitnesses }

// Kind reports KindLockRequest.
func (LockRequest) Kind() Kind { return KindLockRequest }

// Kind reports KindLockAck.
func (LockAck) Kind() Kind { return KindLockAck }

// Kind reports KindLockRelease.
func (LockRelease) Kind() Kind { return KindLockRelease }

// Kind reports KindLockBreak.
func (LockBreak) Kind() Kind { return KindLockBreak }

// Kind reports KindLockExpire.
func (LockExpire) Kind() Kind { return KindLockExpire }

// Kind reports KindCreateLink.
func (CreateLink) Kind() Kind { return KindCreateLink }

// Kind reports KindSuspendLink.
func (SuspendLink) Kind() Kind { return KindSuspendLink }

// Kind reports KindResumeLink.
func (ResumeLink) Kind() Kind { return KindResumeLink }

// Kind reports KindRevokeLink.
func (RevokeLink) Kind() Kind { return KindRevokeLink }

// Kind reports KindDeleteShare.
func (DeleteShare) Kind() Kind { return KindDeleteShare }

// Kind reports KindLinkDownload.
func (LinkDownload) Kind() Kind { return KindLinkDownload }

func newBody(k Kind) (Body, error) {
	switch k {
	case KindGenesis:
		return &Genesis{}, nil
	case KindAddDevice:
		return &AddDevice{}, nil
	case KindRemoveDevice:
		return &RemoveDevice{}, nil
	case KindCreateGroup:
		return &CreateGroup{}, nil
	case KindAddGroupMember:
		return &AddGroupMember{}, nil
	case KindRemoveGroupMember:
		return &RemoveGroupMember{}, nil
	case KindGrant:
		return &Grant{}, nil
	case KindChangeRole:
		return &ChangeRole{}, nil
	case KindRevoke:
		return &Revoke{}, nil
	case KindRenounce:
		return &Renounce{}, nil
	case KindRestrict:
		return &Restrict{}, nil
	case KindUnrestrict:
		return &Unrestrict{}, nil
	case KindCreateFolder:
		return &CreateFolder{}, nil
	case KindMoveFolder:
		return &MoveFolder{}, nil
	case KindDeleteFolder:
		return &DeleteFolder{}, nil
	case KindSetPolicy:
		return &SetPolicy{}, nil
	case KindCreateInvite:
		return &CreateInvite{}, nil
	case KindRevokeInvite:
		return &RevokeInvite{}, nil
	case KindJoin:
		return &Join{}, nil
	case KindRequestAccess:
		return &RequestAccess{}, nil
	case KindApprove:
		return &Approve{}, nil
	case KindDeny:
		return &Deny{}, nil
	case KindDeclareWitnesses:
		return &DeclareWitnesses{}, nil
	case KindLockRequest:
		return &LockRequest{}, nil
	case KindLockAck:
		return &LockAck{}, nil
	case KindLockRelease:
		return &LockRelease{}, nil
	case KindLockBreak:
		return &LockBreak{}, nil
	case KindLockExpire:
		return &LockExpire{}, nil
	case KindCreateLink:
		return &CreateLink{}, nil
	case KindSuspendLink:
		return &SuspendLink{}, nil
	case KindResumeLink:
		return &ResumeLink{}, nil
	case KindRevokeLink:
		return &RevokeLink{}, nil
	case KindDeleteShare:
		return &DeleteShare{}, nil
	case KindLinkDownload:
		return &LinkDownload{}, nil
	}
	return nil, fmt.Errorf("%w: unknown kind %d", ErrMalformed, k)
}

// deref turns the pointer newBody returned into the value type used everywhere else.
func deref(b Body) Body {
	switch v := b.(type) {
	case *Genesis:
		return *v
	case *AddDevice:
		return *v
	case *RemoveDevice:
		return *v
	case *CreateGroup:
		return *v
	case *AddGroupMember:
		return *v
	case *RemoveGroupMember:
		return *v
	case *Grant:
		return *v
	case *ChangeRole:
		return *v
	case *Revoke:
		return *v
	case *Renounce:
		return *v
	case *Restrict:
		return *v
	case *Unrestrict:
		return *v
	case *CreateFolder:
		return *v
	case *MoveFolder:
		return *v
	case *DeleteFolder:
		return *v
	case *SetPolicy:
		return *v
	case *CreateInvite:
		return *v
	case *RevokeInvite:
		return *v
	case *Join:
		return *v
	case *RequestAccess:
		return *v
	case *Approve:
		return *v
	case *Deny:
		return *v
	case *DeclareWitnesses:
		return *v
	case *LockRequest:
		return *v
	case *LockAck:
		return *v
	case *LockRelease:
		return *v
	case *LockBreak:
		return *v
	case *LockExpire:
		return *v
	case *CreateLink:
		return *v
	case *SuspendLink:
		return *v
	case *ResumeLink:
		return *v
	case *RevokeLink:
		return *v
	case *DeleteShare:
		return *v
	case *LinkDownload:
		return *v
	}
	return b
}
