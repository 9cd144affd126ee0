package node

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshfold/meshfold/crdt"
)

// The members-and-rights calls of the control API (docs/api.md, "Members and
// rights"). {id} is a folder ID, a unique suffix of one, or the folder's
// local directory (URL-escaped).
func init() {
	apiRoutes = append(apiRoutes, func(a *API, mux *http.ServeMux) {
		mux.HandleFunc("GET /v1/folders/{id}/members", a.members)
		mux.HandleFunc("POST /v1/folders/{id}/grants", a.grant)
		mux.HandleFunc("POST /v1/folders/{id}/revoke", a.revoke)
		mux.HandleFunc("GET /v1/folders/{id}/groups", a.groups)
		mux.HandleFunc("POST /v1/folders/{id}/groups", a.createGroup)
		mux.HandleFunc("POST /v1/folders/{id}/groups/{name}/members", a.groupMember)
		mux.HandleFunc("POST /v1/folders/{id}/restrict", a.restrict)
		mux.HandleFunc("POST /v1/folders/{id}/policy", a.policy)
		mux.HandleFunc("GET /v1/folders/{id}/requests", a.requests)
		mux.HandleFunc("POST /v1/folders/{id}/requests/{req}", a.settle)
		mux.HandleFunc("POST /v1/devices", a.addDevice)
		mux.HandleFunc("POST /v1/devices/link", a.linkDevice)
	})
}

// folderOf resolves the {id} of a request, answering 404 (unknown) or 400
// (ambiguous) itself.
func (a *API) folderOf(w http.ResponseWriter, r *http.Request) (*Folder, bool) {
	f, err := a.n.ResolveFolder(r.PathValue("id"))
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrUnknownFolder) {
			code = http.StatusNotFound
		}
		apiError(w, code, err)
		return nil, false
	}
	return f, true
}

// rightsError answers a failed rights call: 403 when the log refused the
// op, 404 for an unknown user, group or request, 400 otherwise.
func rightsError(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	switch {
	case errors.Is(err, ErrRefused):
		code = http.StatusForbidden
	case errors.Is(err, ErrUnknownUser), errors.Is(err, ErrUnknownGroup), errors.Is(err, ErrUnknownRequest):
		code = http.StatusNotFound
	}
	apiError(w, code, err)
}

// folderChange is a call that changes a folder's rights: it decodes a Req
// body, resolves {id}, runs do and answers {} or the error (rightsError).
func folderChange[Req any](a *API, do func(f *Folder, req Req, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		f, ok := a.folderOf(w, r)
		if !ok {
			return
		}
		if err := do(f, req, r); err != nil {
			rightsError(w, err)
			return
		}
		apiJSON(w, map[string]string{})
	}
}

func (a *API) members(w http.ResponseWriter, r *http.Request) {
	f, ok := a.folderOf(w, r)
	if !ok {
		return
	}
	rep, err := f.Members(r.URL.Query().Get("path"))
	if err != nil {
		rightsError(w, err)
		return
	}
	apiJSON(w, rep)
}

type grantReq struct {
	Who  string `json:"who"` // a user ID (or unique suffix) or "group:<name>"
	Role string `json:"role"`
	Path string `json:"path"`
}

func (a *API) grant(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req grantReq, _ *http.Request) error {
		role, err := ParseRole(req.Role)
		if err != nil {
			return err
		}
		return f.Grant(req.Who, role, req.Path)
	})(w, r)
}

type revokeReq struct {
	Who  string `json:"who"`
	Path string `json:"path"`
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req revokeReq, _ *http.Request) error { return f.Revoke(req.Who, req.Path) })(w, r)
}

func (a *API) groups(w http.ResponseWriter, r *http.Request) {
	f, ok := a.folderOf(w, r)
	if !ok {
		return
	}
	apiJSON(w, f.Groups())
}

type groupReq struct {
	Name string `json:"name"`
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req groupReq, _ *http.Request) error { return f.CreateGroup(req.Name) })(w, r)
}

type groupMemberReq struct {
	User   string `json:"user"`
	Remove bool   `json:"remove"`
}

func (a *API) groupMember(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req groupMemberReq, r *http.Request) error {
		return f.GroupMember(r.PathValue("name"), req.User, req.Remove)
	})(w, r)
}

type restrictReq struct {
	Path string `json:"path"`
	Undo bool   `json:"undo"` // unrestrict
}

func (a *API) restrict(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req restrictReq, _ *http.Request) error { return f.Restrict(req.Path, req.Undo) })(w, r)
}

type policyReq struct {
	Policy string `json:"policy"`
}

func (a *API) policy(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req policyReq, _ *http.Request) error {
		p, err := ParsePolicy(req.Policy)
		if err != nil {
			return err
		}
		return f.SetPolicy(p)
	})(w, r)
}

func (a *API) requests(w http.ResponseWriter, r *http.Request) {
	f, ok := a.folderOf(w, r)
	if !ok {
		return
	}
	apiJSON(w, f.Requests())
}

type settleReq struct {
	Approve bool   `json:"approve"`
	Role    string `json:"role"` // with approve: "" keeps the role asked for
}

func (a *API) settle(w http.ResponseWriter, r *http.Request) {
	folderChange(a, func(f *Folder, req settleReq, r *http.Request) error {
		role := crdt.RoleNone
		if req.Role != "" {
			var err error
			if role, err = ParseRole(req.Role); err != nil {
				return err
			}
		}
		return f.Settle(r.PathValue("req"), req.Approve, role)
	})(w, r)
}

type addDeviceReq struct {
	Device string `json:"device"` // the new device's ID
}

func (a *API) addDevice(w http.ResponseWriter, r *http.Request) {
	var req addDeviceReq
	if !decode(w, r, &req) {
		return
	}
	dev, err := peer.Decode(req.Device)
	if err != nil {
		apiError(w, http.StatusBadRequest, fmt.Errorf("%q is not a device ID: %w", req.Device, err))
		return
	}
	key, err := a.n.AddDevice(dev)
	if err != nil {
		rightsError(w, err)
		return
	}
	apiJSON(w, map[string]string{"key": key.String()})
}

type linkDeviceReq struct {
	Key  string `json:"key"`
	Path string `json:"path"` // the directory the folders go under
}

func (a *API) linkDevice(w http.ResponseWriter, r *http.Request) {
	var req linkDeviceReq
	if !decode(w, r, &req) {
		return
	}
	key, err := ParseDeviceKey(req.Key)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if req.Path == "" {
		apiError(w, http.StatusBadRequest, errors.New("path is required"))
		return
	}
	fs, err := a.n.LinkDevice(r.Context(), key, req.Path)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	out := struct {
		User    string              `json:"user"`
		Folders []map[string]string `json:"folders"`
	}{User: key.Cert.User.String(), Folders: []map[string]string{}}
	for _, f := range fs {
		out.Folders = append(out.Folders, map[string]string{"id": f.ID(), "root": f.Root()})
	}
	apiJSON(w, out)
}
