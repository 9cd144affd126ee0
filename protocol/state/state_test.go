package state

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/meshfold/meshfold/protocol/internal/golden"
	"github.com/meshfold/meshfold/protocol/internal/testkeys"
	"github.com/meshfold/meshfold/protocol/wire"
	"github.com/meshfold/meshfold/store"
)

var update = flag.Bool("update", false, "rewrite the golden wire vectors in testdata/")

const testFolder = "bafyreigenesisfolder"

func sampleState(t testing.TB) *FolderState {
	t.Helper()
	key, _ := testkeys.Key(t, 1)
	_, b := testkeys.Key(t, 2)
	_, c := testkeys.Key(t, 3)
	s := &FolderState{
		Folder:   testFolder,
		Seq:      42,
		Seen:     store.VersionVector{}.Update(store.DeviceID(b), 7).Update(store.DeviceID(c), 1000),
		LogHeads: []cid.Cid{store.ChunkCID([]byte("op2")), store.ChunkCID([]byte("op1"))},
		Time:     1_700_000_000_000_000_000,
	}
	if err := s.Sign(key); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFolderStateGolden(t *testing.T) {
	s := sampleState(t)
	golden.Check(t, "folderstate_v1", s.Marshal(), *update)
	got, err := Unmarshal(golden.Read(t, "folderstate_v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(); err != nil {
		t.Fatal(err)
	}
	if got.Folder != s.Folder || got.Device != s.Device || got.Seq != s.Seq || got.Time != s.Time ||
		got.Seen.Compare(s.Seen) != store.Equal || len(got.LogHeads) != 2 || !bytes.Equal(got.Signature, s.Signature) {
		t.Fatalf("decoded %+v\nwant %+v", got, s)
	}
	if !bytes.Equal(got.Marshal(), s.Marshal()) {
		t.Fatal("re-encoding differs")
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	_, other := testkeys.Key(t, 9)
	tamper := map[string]func(s *FolderState){
		"folder":    func(s *FolderState) { s.Folder += "x" },
		"seq":       func(s *FolderState) { s.Seq++ },
		"seen":      func(s *FolderState) { s.Seen = s.Seen.Update(store.DeviceID(other), 1) },
		"heads":     func(s *FolderState) { s.LogHeads = s.LogHeads[:1] },
		"time":      func(s *FolderState) { s.Time++ },
		"device":    func(s *FolderState) { s.Device = other },
		"signature": func(s *FolderState) { s.Signature[0] ^= 1 },
		"no sig":    func(s *FolderState) { s.Signature = nil },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			s := sampleState(t)
			f(s)
			// Through the wire, as a receiver sees it.
			got, err := Unmarshal(s.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Verify(); !errors.Is(err, wire.ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	s := sampleState(t)
	good := s.Marshal()
	unsorted := *s
	unsorted.LogHeads = []cid.Cid{s.LogHeads[1], s.LogHeads[0]}
	empty := *s
	empty.Folder = ""
	tests := map[string][]byte{
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"unsorted heads": unsorted.Marshal(),
		"empty folder":   empty.Marshal(),
		"other type":     wire.AppendFrame(nil, wire.TypeLogHeads, good[3:]),
	}
	for name, in := range tests {
		if _, err := Unmarshal(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func pubsubMsg(topic string, from peer.ID, data []byte) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{Data: data, Topic: &topic, From: []byte(from)}}
}

func TestValidator(t *testing.T) {
	s := sampleState(t)
	_, stranger := testkeys.Key(t, 8)
	members := map[peer.ID]bool{s.Device: true}
	v := NewStateValidator(func(folder string, dev peer.ID) bool { return folder == testFolder && members[dev] })
	forged := *s
	forged.Seq = 1 // signature no longer matches
	tests := []struct {
		name string
		msg  *pubsub.Message
		want pubsub.ValidationResult
	}{
		{"good", pubsubMsg(Topic(testFolder), s.Device, s.Marshal()), pubsub.ValidationAccept},
		{"garbage", pubsubMsg(Topic(testFolder), s.Device, []byte{1, 2, 3}), pubsub.ValidationReject},
		{"bad signature", pubsubMsg(Topic(testFolder), s.Device, forged.Marshal()), pubsub.ValidationReject},
		{"relayed as own", pubsubMsg(Topic(testFolder), stranger, s.Marshal()), pubsub.ValidationReject},
		{"wrong topic", pubsubMsg(Topic("other"), s.Device, s.Marshal()), pubsub.ValidationReject},
	}
	for _, tt := range tests {
		if got := v(t.Context(), "", tt.msg); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if st, ok := tests[0].msg.ValidatorData.(*FolderState); !ok || st.Seq != s.Seq {
		t.Errorf("ValidatorData = %v", tests[0].msg.ValidatorData)
	}
	delete(members, s.Device)
	if got := v(t.Context(), "", pubsubMsg(Topic(testFolder), s.Device, s.Marshal())); got != pubsub.ValidationIgnore {
		t.Errorf("non-member: %v, want Ignore", got)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, b := range golden.All(f) {
		f.Add(b)
	}
	f.Add(sampleState(f).Marshal())
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Unmarshal(in)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Marshal(), in) {
			t.Fatalf("not canonical")
		}
		_ = s.Verify() // must not panic on any decoded record
	})
}
