package links

import (
	"bytes"
	"testing"
)

// FuzzDecoders: any bytes either fail to decode or decode to a message whose
// encoding decodes to the same message; nothing panics.
func FuzzDecoders(f *testing.F) {
	f.Add(testRequest().Marshal())
	f.Add(testMeta("one", "two").Marshal())
	f.Add(Refusal{Reason: ReasonSuspended, Message: "x"}.Marshal())
	f.Add(Data{CID: testMeta("one").Chunks[0].CID, Data: []byte("one")}.Marshal())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := UnmarshalRequest(b); err == nil {
			if !bytes.Equal(r.Marshal(), b) {
				t.Fatal("request does not re-encode to its bytes")
			}
		}
		if m, err := UnmarshalMeta(b); err == nil {
			if !bytes.Equal(m.Marshal(), b) {
				t.Fatal("meta does not re-encode to its bytes")
			}
		}
		if r, err := UnmarshalRefusal(b); err == nil {
			if !bytes.Equal(r.Marshal(), b) {
				t.Fatal("refusal does not re-encode to its bytes")
			}
		}
		if d, err := UnmarshalData(b); err == nil {
			if !bytes.Equal(d.Marshal(), b) {
				t.Fatal("data does not re-encode to its bytes")
			}
		}
	})
}

// FuzzParseToken: any text either fails with ErrBadToken or parses to a token
// that encodes back to a parseable token with the same fields.
func FuzzParseToken(f *testing.F) {
	f.Add(testToken(f).String())
	f.Add(TokenPrefix)
	f.Add("mfinv1-aaaa")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(k.String())
		if err != nil || !again.Folder.Equals(k.Folder) || !bytes.Equal(again.Link, k.Link) || !bytes.Equal(again.Secret, k.Secret) {
			t.Fatalf("re-parse: %v", err)
		}
	})
}
