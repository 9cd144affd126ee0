package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
)

// TestRelayWitness: a relay linked as a device of the owner's user syncs the
// folder; the owner declares it the lock witness. While it runs, another
// user's lock is granted and the file is read-only on the owner's device;
// once it is gone a lock request stays pending and editing still syncs.
// Declaring a device outside the folder, or as a non-owner, is refused.
func TestRelayWitness(t *testing.T) {
	a := testNode(t, "a")
	b := testNode(t, "b", a.AddrInfo())
	r := openNode(t, filepath.Join(t.TempDir(), "relay"), a.AddrInfo())
	rClosed := false
	defer func() {
		if !rClosed {
			r.Close()
		}
	}()
	dirA, dirB := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("doc"), 0o644)
	os.WriteFile(filepath.Join(dirA, "notes.txt"), []byte("notes"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	fb := share(t, a, fa, b, crdt.RoleEditor, dirB)
	key, err := a.AddDevice(r.ID())
	if err != nil {
		t.Fatal(err)
	}
	frs, err := r.LinkDevice(context.Background(), key, t.TempDir())
	if err != nil || len(frs) != 1 {
		t.Fatalf("link the relay: %v (%d folders)", err, len(frs))
	}
	eventually(t, "the folder on the relay", fileIs(frs[0].root, "doc.txt", []byte("doc")))
	eventually(t, "the folder on b", fileIs(dirB, "notes.txt", []byte("notes")))

	stranger, _, _ := crypto.GenerateEd25519Key(nil)
	sid, _ := peer.IDFromPrivateKey(stranger)
	if _, err := fa.DeclareWitnesses([]string{sid.String()}); !errors.Is(err, ErrNotFolderDevice) {
		t.Fatalf("a device outside the folder: %v", err)
	}
	if _, err := fb.DeclareWitnesses([]string{r.ID().String()}); !errors.Is(err, ErrRefused) {
		t.Fatalf("declared by an editor: %v", err)
	}
	rep, err := fa.DeclareWitnesses([]string{r.ID().String()[len(r.ID().String())-8:]})
	if err != nil || rep.Quorum != 1 || len(rep.Witnesses) != 1 || rep.Witnesses[0].Device != r.ID().String() {
		t.Fatalf("declare: %+v %v", rep, err)
	}
	eventually(t, "the witness known on b", func() error {
		if w := fb.WitnessReport().Witnesses; len(w) != 1 || w[0].Device != r.ID().String() {
			return fmt.Errorf("%+v", w)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	li, err := b.Lock(ctx, filepath.Join(dirB, "doc.txt"), 0)
	if err != nil || li.State != LockGranted || li.Acks != 1 || li.Quorum != 1 {
		t.Fatalf("lock with the relay witness up: %+v %v", li, err)
	}
	eventually(t, "doc.txt read-only on a", func() error {
		st, err := os.Stat(filepath.Join(dirA, "doc.txt"))
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o222 != 0 {
			return fmt.Errorf("mode %v", st.Mode())
		}
		return nil
	})

	r.Close()
	rClosed = true
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	li, err = b.Lock(short, filepath.Join(dirB, "notes.txt"), 0)
	if err != nil || li.State != LockPending || li.Acks != 0 {
		t.Fatalf("lock with the witness gone: %+v %v", li, err)
	}
	os.WriteFile(filepath.Join(dirB, "notes.txt"), []byte("edited while the lock is pending"), 0o644)
	eventually(t, "the edit on a", fileIs(dirA, "notes.txt", []byte("edited while the lock is pending")))
}

// TestInvitedRelayWitness: a relay that joined by invitation, as a viewer of
// its own user, is a witness too once an owner declares it.
func TestInvitedRelayWitness(t *testing.T) {
	a := testNode(t, "a")
	r := testNode(t, "relay", a.AddrInfo())
	dirA := t.TempDir()
	os.WriteFile(filepath.Join(dirA, "doc.txt"), []byte("doc"), 0o644)
	fa, err := a.CreateFolder(dirA, "shared")
	if err != nil {
		t.Fatal(err)
	}
	fr := share(t, a, fa, r, crdt.RoleViewer, t.TempDir())
	eventually(t, "doc.txt on the relay", fileIs(fr.root, "doc.txt", []byte("doc")))
	if _, err := fa.DeclareWitnesses([]string{r.ID().String()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	li, err := a.Lock(ctx, filepath.Join(dirA, "doc.txt"), 0)
	if err != nil || li.State != LockGranted || li.Acks != 1 {
		t.Fatalf("lock witnessed by an invited relay: %+v %v", li, err)
	}
}
