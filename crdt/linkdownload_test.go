package crdt

import (
	"errors"
	"testing"
)

// TestLinkDownloads: every LinkDownload op counts once; only a device whose
// user may read the link's path records one; a revoked link takes none.
func TestLinkDownloads(t *testing.T) {
	l, f, m := team(t, RoleViewer)
	v := m[0]
	secret := mkdir(t, l, f, RootNode, "secret")
	must(t, l, f, Restrict{Node: secret})
	lnk := RefOf(must(t, l, f, CreateLink{Path: "doc.txt", Role: RoleViewer, DownloadLimit: 2}).ID)
	hidden := RefOf(must(t, l, f, CreateLink{Path: "secret/x.txt", Role: RoleViewer}).ID)
	must(t, l, f, LinkDownload{Link: lnk})
	must(t, l, v, LinkDownload{Link: lnk})
	links := l.Links()
	if len(links) != 2 || links[0].Downloads+links[1].Downloads != 2 {
		t.Fatalf("links %+v", links)
	}
	for _, k := range links {
		if k.ID == lnk && (k.Downloads != 2 || k.DownloadLimit != 2) {
			t.Fatalf("link %+v", k)
		}
	}
	if err := refused(t, l, v, LinkDownload{Link: hidden}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a device that may not read the file recorded a download: %v", err)
	}
	must(t, l, f, RevokeLink{Link: lnk})
	if err := refused(t, l, f, LinkDownload{Link: lnk}); !errors.Is(err, ErrBadTarget) {
		t.Fatalf("download of a revoked link: %v", err)
	}
}
