package crdt

import "maps"

// clone returns a deep copy of s that shares nothing mutable with it.
// Registers are never modified in place (put builds a new slice), so they
// are shared.
func (s *State) clone() *State {
	c := &State{
		folder:     s.folder,
		deleted:    s.deleted,
		founders:   maps.Clone(s.founders),
		users:      maps.Clone(s.users),
		devices:    make(map[UserID]*device, len(s.devices)),
		groups:     make(map[GroupID]*group, len(s.groups)),
		userGroups: make(map[UserID]map[GroupID]bool, len(s.userGroups)),
		nodes:      make(map[NodeID]*node, len(s.nodes)),
		children:   make(map[NodeID]map[string][]NodeID, len(s.children)),
		grants:     make(map[NodeID]*nodeGrants, len(s.grants)),
		policy:     s.policy,
		invites:    make(map[InviteID]*invite, len(s.invites)),
		requests:   make(map[RequestID]*request, len(s.requests)),
		witnesses:  s.witnesses,
		reqs:       make(map[LockID]*lockReq, len(s.reqs)),
		locks:      make(map[string]*fileLock, len(s.locks)),
		links:      make(map[LinkID]*link, len(s.links)),
		lockFacts:  s.lockFacts,
	}
	for k, v := range s.devices {
		d := *v
		c.devices[k] = &d
	}
	for k, v := range s.groups {
		c.groups[k] = &group{name: v.name, members: maps.Clone(v.members)}
	}
	for k, v := range s.userGroups {
		c.userGroups[k] = maps.Clone(v)
	}
	for k, v := range s.nodes {
		n := *v
		c.nodes[k] = &n
	}
	for k, v := range s.children {
		m := make(map[string][]NodeID, len(v))
		for name, ids := range v {
			m[name] = append([]NodeID(nil), ids...)
		}
		c.children[k] = m
	}
	for k, v := range s.grants {
		c.grants[k] = &nodeGrants{users: maps.Clone(v.users), groups: maps.Clone(v.groups)}
	}
	for k, v := range s.invites {
		i := *v
		i.admitted = maps.Clone(v.admitted)
		c.invites[k] = &i
	}
	for k, v := range s.requests {
		r := *v
		c.requests[k] = &r
	}
	for k, v := range s.reqs {
		if v.ended { // apply never changes an ended request
			c.reqs[k] = v
			continue
		}
		r := *v
		r.acks, r.expired = maps.Clone(v.acks), maps.Clone(v.expired)
		c.reqs[k] = &r
	}
	for k, v := range s.locks {
		f := *v
		f.reqs = append([]LockID(nil), v.reqs...)
		c.locks[k] = &f
	}
	for k, v := range s.links {
		l := *v
		c.links[k] = &l
	}
	return c
}
