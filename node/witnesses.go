package node

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
)

// ErrNotFolderDevice: a witness must be a live device of the folder (it has
// to receive the folder's log to acknowledge lock requests).
var ErrNotFolderDevice = errors.New("not a device of this folder (add it with 'meshfold device add' or an invitation first)")

// WitnessReport lists a folder's lock witnesses.
type WitnessReport struct {
	Folder    string        `json:"folder"`
	Witnesses []WitnessInfo `json:"witnesses"`
	Quorum    int           `json:"quorum"` // acknowledgements a lock needs (0: none declared yet)
}

// WitnessInfo is one witness device.
type WitnessInfo struct {
	Device string `json:"device"`
	User   string `json:"user,omitempty"`
	Me     bool   `json:"me"` // this device
}

// WitnessReport reports the folder's declared witnesses.
func (f *Folder) WitnessReport() WitnessReport {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	rep := WitnessReport{Folder: f.id, Witnesses: []WitnessInfo{}}
	ws := f.rlog.Witnesses()
	for _, w := range ws {
		wi := WitnessInfo{Device: w.String(), Me: w == f.n.id}
		if u, ok := f.rlog.DeviceUser(w); ok {
			wi.User = u.String()
		}
		rep.Witnesses = append(rep.Witnesses, wi)
	}
	if len(ws) > 0 {
		rep.Quorum = len(ws)/2 + 1
	}
	return rep
}

// DeclareWitnesses makes devices (IDs, or suffixes of the folder's device IDs
// no other device shares) the folder's lock witnesses: a lock is granted
// once a majority of them acknowledged it. Owners only.
func (f *Folder) DeclareWitnesses(devices []string) (WitnessReport, error) {
	if len(devices) == 0 || len(devices) > crdt.MaxWitnesses {
		return WitnessReport{}, fmt.Errorf("name 1 to %d witness devices", crdt.MaxWitnesses)
	}
	f.logMu.Lock()
	var live []peer.ID
	for _, d := range f.rlog.Snapshot().Devices {
		if d.Live {
			live = append(live, d.Device)
		}
	}
	f.logMu.Unlock()
	var ids []peer.ID
	for _, s := range devices {
		id, err := matchDevice(live, s)
		if err != nil {
			return WitnessReport{}, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if _, err := f.appendOp("declaring lock witnesses", crdt.DeclareWitnesses{Devices: ids}); err != nil {
		return WitnessReport{}, err
	}
	f.log.Info("declared lock witnesses", "devices", len(ids))
	return f.WitnessReport(), nil
}

// matchDevice finds the live device s names: its full ID, or a suffix of at
// least 6 characters only one device has.
func matchDevice(live []peer.ID, s string) (peer.ID, error) {
	s = strings.TrimSpace(s)
	if id, err := peer.Decode(s); err == nil {
		if !slices.Contains(live, id) {
			return "", fmt.Errorf("device %s: %w", ShortID(id), ErrNotFolderDevice)
		}
		return id, nil
	}
	var found []peer.ID
	if len(s) >= 6 {
		for _, d := range live {
			if strings.HasSuffix(d.String(), s) {
				found = append(found, d)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("device %q: %w", s, ErrNotFolderDevice)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("device %q names %d devices: give more of the ID", s, len(found))
}

type witnessesReq struct {
	Devices []string `json:"devices"`
}

func init() {
	apiRoutes = append(apiRoutes, func(a *API, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/folders/{id}/witnesses", func(w http.ResponseWriter, r *http.Request) {
			f, ok := a.folderOf(w, r)
			if !ok {
				return
			}
			apiJSON(w, f.WitnessReport())
		})
		mux.HandleFunc("POST /v1/folders/{id}/witnesses", func(w http.ResponseWriter, r *http.Request) {
			f, ok := a.folderOf(w, r)
			if !ok {
				return
			}
			var req witnessesReq
			if !decode(w, r, &req) {
				return
			}
			rep, err := f.DeclareWitnesses(req.Devices)
			if errors.Is(err, ErrNotFolderDevice) {
				apiError(w, http.StatusNotFound, err)
				return
			}
			if err != nil {
				rightsError(w, err)
				return
			}
			apiJSON(w, rep)
		})
	})
}
