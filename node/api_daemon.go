package node

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/meshfold/meshfold/protocol/join"
	"github.com/meshfold/meshfold/store"
)

// The daemon's own calls: folder list, pause and resume, remove, per-path
// status and the event stream (docs/api.md).
func init() {
	apiRoutes = append(apiRoutes, func(a *API, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/events", a.events)
		mux.HandleFunc("GET /v1/folders", a.listFolders)
		mux.HandleFunc("DELETE /v1/folders/{id}", a.removeFolder)
		mux.HandleFunc("POST /v1/folders/{id}/pause", a.pauseFolder)
		mux.HandleFunc("POST /v1/folders/{id}/resume", a.resumeFolder)
		mux.HandleFunc("GET /v1/folders/{id}/path", a.pathStatus)
		mux.HandleFunc("POST /v1/pause", a.pauseAll)
		mux.HandleFunc("POST /v1/resume", a.resumeAll)
		mux.HandleFunc("POST /v1/invites/revoke", a.revokeInvite)
	})
}

// folderRefs lists the running folders for ResolveFolder.
func (n *Node) folderRefs() []FolderRef {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]FolderRef, 0, len(n.folders))
	for id, f := range n.folders {
		out = append(out, FolderRef{ID: id, Root: f.root})
	}
	return out
}

func (a *API) listFolders(w http.ResponseWriter, _ *http.Request) {
	apiJSON(w, a.n.folderReports())
}

func (a *API) removeFolder(w http.ResponseWriter, r *http.Request) {
	if f, ok := a.folderOf(w, r); ok {
		a.done(w, f, a.n.RemoveFolder(f.id))
	}
}

func (a *API) pauseFolder(w http.ResponseWriter, r *http.Request) {
	if f, ok := a.folderOf(w, r); ok {
		a.done(w, f, a.n.PauseFolder(f.id))
	}
}

func (a *API) resumeFolder(w http.ResponseWriter, r *http.Request) {
	if f, ok := a.folderOf(w, r); ok {
		a.done(w, f, a.n.ResumeFolder(f.id))
	}
}

func (a *API) done(w http.ResponseWriter, f *Folder, err error) {
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	apiJSON(w, map[string]string{"id": f.id, "root": f.root})
}

func (a *API) pauseAll(w http.ResponseWriter, _ *http.Request) {
	if err := a.n.PauseAll(); err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	apiJSON(w, map[string]bool{"paused_all": true})
}

func (a *API) resumeAll(w http.ResponseWriter, _ *http.Request) {
	if err := a.n.ResumeAll(); err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	apiJSON(w, map[string]bool{"paused_all": false})
}

// Path states of a PathReport.
const (
	PathSynced   = "synced"
	PathSyncing  = "syncing"
	PathConflict = "conflict"
	PathPaused   = "paused"
	PathFailed   = "error"
	PathNoAccess = "no access" // a restricted folder this device's user may not read, or a pending request
	PathLocked   = "locked"    // a file locked by someone (Locks says by whom, until when)
)

// PathReport is the answer of GET /v1/folders/{id}/path?path=rel: the state
// of one path (a file or a directory and everything below it).
type PathReport struct {
	Folder        string     `json:"folder"`
	Path          string     `json:"path"` // slash-separated, relative to the folder root; "" is the root
	State         string     `json:"state"`
	Err           string     `json:"err,omitempty"`
	NeedFiles     int        `json:"need_files"`
	NeedBytes     int64      `json:"need_bytes"`
	Conflicts     int        `json:"conflicts"`
	ConflictNames []string   `json:"conflict_names"`
	Locks         []LockInfo `json:"locks,omitempty"` // locks on the path (granted or pending)
}

// PathStatus reports the state of one path of a folder.
func (f *Folder) PathStatus(p string) (PathReport, error) {
	p = strings.Trim(p, "/")
	if p != "" {
		if err := store.ValidatePath(p); err != nil {
			return PathReport{}, err
		}
	}
	st := f.Status()
	r := PathReport{Folder: f.id, Path: p}
	r.Conflicts, r.ConflictNames = f.conflicts(p)
	if p != "" {
		r.Locks = f.lockInfos(p)
	}
	f.mu.Lock()
	for cp, m := range f.candidates {
		if p != "" && cp != p && !strings.HasPrefix(cp, p+"/") {
			continue
		}
		if need, size := needOf(m); need {
			r.NeedFiles++
			r.NeedBytes += size
		}
	}
	f.mu.Unlock()
	switch {
	case st.Access != "" || underAny(p, st.NoAccess):
		r.State = PathNoAccess
	case st.Paused:
		r.State = PathPaused
	case st.State == "error":
		r.State, r.Err = PathFailed, st.Err
	case r.NeedFiles > 0:
		r.State = PathSyncing
	case r.Conflicts > 0:
		r.State = PathConflict
	case slices.ContainsFunc(r.Locks, func(l LockInfo) bool { return l.State == LockGranted }):
		r.State = PathLocked
	default:
		r.State = PathSynced
	}
	return r, nil
}

// underAny tells whether path p is one of dirs or inside one of them.
func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func (a *API) pathStatus(w http.ResponseWriter, r *http.Request) {
	f, ok := a.folderOf(w, r)
	if !ok {
		return
	}
	rep, err := f.PathStatus(r.URL.Query().Get("path"))
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	apiJSON(w, rep)
}

func (a *API) revokeInvite(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key string `json:"key"`
	}
	if !decode(w, r, &req) {
		return
	}
	key, err := join.ParseKey(req.Key)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if err := a.n.RevokeInvite(key); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrUnknownFolder) {
			code = http.StatusNotFound
		}
		apiError(w, code, err)
		return
	}
	apiJSON(w, map[string]string{"folder": key.Folder.String(), "revoked": "yes"})
}
