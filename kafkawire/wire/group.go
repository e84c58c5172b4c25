package wire

import "fmt"

// FindCoordinatorRequest asks which brokers coordinate groups or
// transactional IDs (FindCoordinator v1-v6). From v4 one request carries
// several keys; below v4 only Keys[0] is sent (an empty Keys sends an empty
// key), so a caller sends one request per key.
type FindCoordinatorRequest struct {
	// KeyType is 0 for groups, 1 for transactional IDs and 2 for share
	// groups (v6+).
	KeyType int8
	Keys    []string
}

// Key returns KeyFindCoordinator.
func (*FindCoordinatorRequest) Key() int16 { return KeyFindCoordinator }

// AppendTo appends the request body at version to dst.
func (r *FindCoordinatorRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 3
	if version <= 3 {
		var key string
		if len(r.Keys) > 0 {
			key = r.Keys[0]
		}
		dst = appendStr(dst, key, flex)
		dst = AppendInt8(dst, r.KeyType)
	} else {
		dst = AppendInt8(dst, r.KeyType)
		dst = appendArrayLen(dst, len(r.Keys), flex)
		for _, k := range r.Keys {
			dst = appendStr(dst, k, flex)
		}
	}
	return appendTags(dst, flex)
}

// FindCoordinatorResponse is a broker's answer to FindCoordinatorRequest:
// one result per key, or below v4 exactly one result, for the one key
// requested, whose Key is "" (the response does not name it).
type FindCoordinatorResponse struct {
	Coordinators []FindCoordinatorResult
}

// FindCoordinatorResult is the coordinator of one key; ErrorMessage is ""
// when null.
type FindCoordinatorResult struct {
	Key          string
	NodeID       int32
	Host         string
	Port         int32
	ErrorCode    int16
	ErrorMessage string
}

// Decode decodes a response body at version into r.
func (r *FindCoordinatorResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyFindCoordinator, version); err != nil {
		return fmt.Errorf("decode find coordinator response: %w", err)
	}
	*r = FindCoordinatorResponse{}
	flex := version >= 3
	rd := Reader{Src: body}
	rd.Int32() // ThrottleMillis
	if version <= 3 {
		c := FindCoordinatorResult{ErrorCode: rd.Int16(), ErrorMessage: rd.nstr(flex)}
		c.NodeID, c.Host, c.Port = rd.Int32(), rd.str(flex), rd.Int32()
		r.Coordinators = []FindCoordinatorResult{c}
	} else if n := rd.arrayLen(flex, 14); n >= 0 { // empty key and host, 10 fixed bytes, null message, tags
		r.Coordinators = make([]FindCoordinatorResult, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			c := FindCoordinatorResult{Key: rd.str(flex), NodeID: rd.Int32(), Host: rd.str(flex), Port: rd.Int32()}
			c.ErrorCode, c.ErrorMessage = rd.Int16(), rd.nstr(flex)
			rd.tags(flex)
			r.Coordinators = append(r.Coordinators, c)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode find coordinator response v%d: %w", version, err)
	}
	return nil
}

// JoinGroupRequest joins a member to a classic group (JoinGroup v2-v9).
// From v4 the coordinator answers a join without MemberID with
// ErrMemberIDRequired and the MemberID to join again with.
type JoinGroupRequest struct {
	GroupID                string
	SessionTimeoutMillis   int32
	RebalanceTimeoutMillis int32
	MemberID               string
	GroupInstanceID        string // v5+; "" is sent as null
	// ProtocolType is "consumer" for consumers, whose protocol metadata
	// is a ConsumerSubscription.
	ProtocolType string
	Protocols    []JoinGroupProtocol
	Reason       string // v8+; "" is sent as null
}

// JoinGroupProtocol is one protocol (for consumers, an assignor such as
// "range") the member supports, with its metadata; nil Metadata is sent
// as empty bytes (the field is not nullable).
type JoinGroupProtocol struct {
	Name     string
	Metadata []byte
}

// Key returns KeyJoinGroup.
func (*JoinGroupRequest) Key() int16 { return KeyJoinGroup }

// AppendTo appends the request body at version to dst.
func (r *JoinGroupRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 6
	dst = appendStr(dst, r.GroupID, flex)
	dst = AppendInt32(dst, r.SessionTimeoutMillis)
	dst = AppendInt32(dst, r.RebalanceTimeoutMillis)
	dst = appendStr(dst, r.MemberID, flex)
	if version >= 5 {
		dst = appendNstr(dst, r.GroupInstanceID, flex)
	}
	dst = appendStr(dst, r.ProtocolType, flex)
	dst = appendArrayLen(dst, len(r.Protocols), flex)
	for _, p := range r.Protocols {
		dst = appendStr(dst, p.Name, flex)
		dst = appendNonNullBytes(dst, p.Metadata, flex)
		dst = appendTags(dst, flex)
	}
	if version >= 8 {
		dst = appendNstr(dst, r.Reason, flex)
	}
	return appendTags(dst, flex)
}

// appendNonNullBytes appends b as bytes that are not nullable: nil is
// sent empty.
func appendNonNullBytes(dst []byte, b []byte, flex bool) []byte {
	if b == nil {
		b = []byte{}
	}
	return appendBytes(dst, b, flex)
}

// JoinGroupResponse is a broker's answer to JoinGroupRequest. Members is
// set for the leader only. ProtocolType (v7+) and ProtocolName are "" when
// null.
type JoinGroupResponse struct {
	ErrorCode      int16
	GenerationID   int32
	ProtocolType   string
	ProtocolName   string
	Leader         string
	SkipAssignment bool // v9+
	MemberID       string
	Members        []JoinGroupMember
}

// JoinGroupMember is one member of the group as the leader sees it;
// GroupInstanceID (v5+) is "" when null, and Metadata is a sub-slice of the
// decoded body (nil if the broker sent null).
type JoinGroupMember struct {
	MemberID        string
	GroupInstanceID string
	Metadata        []byte
}

// Decode decodes a response body at version into r. The Metadata of every
// member aliases body.
func (r *JoinGroupResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyJoinGroup, version); err != nil {
		return fmt.Errorf("decode join group response: %w", err)
	}
	*r = JoinGroupResponse{}
	flex := version >= 6
	rd := Reader{Src: body}
	rd.Int32() // ThrottleMillis
	r.ErrorCode = rd.Int16()
	r.GenerationID = rd.Int32()
	if version >= 7 {
		r.ProtocolType = rd.nstr(flex)
		r.ProtocolName = rd.nstr(flex)
	} else {
		r.ProtocolName = rd.str(flex)
	}
	r.Leader = rd.str(flex)
	if version >= 9 {
		r.SkipAssignment = rd.Bool()
	}
	r.MemberID = rd.str(flex)
	if n := rd.arrayLen(flex, 4); n >= 0 { // v6: empty id, null instance, empty metadata, tags
		r.Members = make([]JoinGroupMember, 0, n)
		for i := 0; i < n && rd.err == nil; i++ {
			m := JoinGroupMember{MemberID: rd.str(flex)}
			if version >= 5 {
				m.GroupInstanceID = rd.nstr(flex)
			}
			m.Metadata = rd.bytes(flex)
			rd.tags(flex)
			r.Members = append(r.Members, m)
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode join group response v%d: %w", version, err)
	}
	return nil
}

// SyncGroupRequest ends a classic group's rebalance (SyncGroup v0-v5): the
// leader sends every member's assignment, the others none.
type SyncGroupRequest struct {
	GroupID         string
	GenerationID    int32
	MemberID        string
	GroupInstanceID string // v3+; "" is sent as null
	ProtocolType    string // v5+; "" is sent as null
	ProtocolName    string // v5+; "" is sent as null
	Assignments     []SyncGroupAssignment
}

// SyncGroupAssignment is the assignment of one member (for protocol type
// "consumer", a ConsumerAssignment); nil Assignment is sent as empty bytes.
type SyncGroupAssignment struct {
	MemberID   string
	Assignment []byte
}

// Key returns KeySyncGroup.
func (*SyncGroupRequest) Key() int16 { return KeySyncGroup }

// AppendTo appends the request body at version to dst.
func (r *SyncGroupRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 4
	dst = appendStr(dst, r.GroupID, flex)
	dst = AppendInt32(dst, r.GenerationID)
	dst = appendStr(dst, r.MemberID, flex)
	if version >= 3 {
		dst = appendNstr(dst, r.GroupInstanceID, flex)
	}
	if version >= 5 {
		dst = appendNstr(dst, r.ProtocolType, flex)
		dst = appendNstr(dst, r.ProtocolName, flex)
	}
	dst = appendArrayLen(dst, len(r.Assignments), flex)
	for _, a := range r.Assignments {
		dst = appendStr(dst, a.MemberID, flex)
		dst = appendNonNullBytes(dst, a.Assignment, flex)
		dst = appendTags(dst, flex)
	}
	return appendTags(dst, flex)
}

// SyncGroupResponse is a broker's answer to SyncGroupRequest: the member's
// assignment, a sub-slice of the decoded body (nil if the broker sent
// null). ProtocolType and ProtocolName (v5+) are "" when null.
type SyncGroupResponse struct {
	ErrorCode    int16
	ProtocolType string
	ProtocolName string
	Assignment   []byte
}

// Decode decodes a response body at version into r. r.Assignment aliases
// body.
func (r *SyncGroupResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeySyncGroup, version); err != nil {
		return fmt.Errorf("decode sync group response: %w", err)
	}
	*r = SyncGroupResponse{}
	flex := version >= 4
	rd := Reader{Src: body}
	if version >= 1 {
		rd.Int32() // ThrottleMillis
	}
	r.ErrorCode = rd.Int16()
	if version >= 5 {
		r.ProtocolType = rd.nstr(flex)
		r.ProtocolName = rd.nstr(flex)
	}
	r.Assignment = rd.bytes(flex)
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode sync group response v%d: %w", version, err)
	}
	return nil
}

// HeartbeatRequest keeps a member of a classic group alive (Heartbeat
// v0-v4).
type HeartbeatRequest struct {
	GroupID         string
	GenerationID    int32
	MemberID        string
	GroupInstanceID string // v3+; "" is sent as null
}

// Key returns KeyHeartbeat.
func (*HeartbeatRequest) Key() int16 { return KeyHeartbeat }

// AppendTo appends the request body at version to dst.
func (r *HeartbeatRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 4
	dst = appendStr(dst, r.GroupID, flex)
	dst = AppendInt32(dst, r.GenerationID)
	dst = appendStr(dst, r.MemberID, flex)
	if version >= 3 {
		dst = appendNstr(dst, r.GroupInstanceID, flex)
	}
	return appendTags(dst, flex)
}

// HeartbeatResponse is a broker's answer to HeartbeatRequest.
type HeartbeatResponse struct {
	ErrorCode int16
}

// Decode decodes a response body at version into r.
func (r *HeartbeatResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyHeartbeat, version); err != nil {
		return fmt.Errorf("decode heartbeat response: %w", err)
	}
	*r = HeartbeatResponse{}
	flex := version >= 4
	rd := Reader{Src: body}
	if version >= 1 {
		rd.Int32() // ThrottleMillis
	}
	r.ErrorCode = rd.Int16()
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode heartbeat response v%d: %w", version, err)
	}
	return nil
}

// LeaveGroupRequest removes members from a classic group (LeaveGroup
// v0-v5). From v3 one request carries several members; below v3 only the
// MemberID of Members[0] is sent.
type LeaveGroupRequest struct {
	GroupID string
	Members []LeaveGroupMember
}

// LeaveGroupMember is one member to remove.
type LeaveGroupMember struct {
	MemberID        string
	GroupInstanceID string // v3+; "" is sent as null
	Reason          string // v5+; "" is sent as null
}

// Key returns KeyLeaveGroup.
func (*LeaveGroupRequest) Key() int16 { return KeyLeaveGroup }

// AppendTo appends the request body at version to dst.
func (r *LeaveGroupRequest) AppendTo(dst []byte, version int16) []byte {
	flex := version >= 4
	dst = appendStr(dst, r.GroupID, flex)
	if version <= 2 {
		var id string
		if len(r.Members) > 0 {
			id = r.Members[0].MemberID
		}
		return appendStr(dst, id, flex)
	}
	dst = appendArrayLen(dst, len(r.Members), flex)
	for _, m := range r.Members {
		dst = appendStr(dst, m.MemberID, flex)
		dst = appendNstr(dst, m.GroupInstanceID, flex)
		if version >= 5 {
			dst = appendNstr(dst, m.Reason, flex)
		}
		dst = appendTags(dst, flex)
	}
	return appendTags(dst, flex)
}

// LeaveGroupResponse is a broker's answer to LeaveGroupRequest; Members
// (v3+) holds the result of each member.
type LeaveGroupResponse struct {
	ErrorCode int16
	Members   []LeaveGroupMemberResponse
}

// LeaveGroupMemberResponse is the result for one member; GroupInstanceID
// is "" when null.
type LeaveGroupMemberResponse struct {
	MemberID        string
	GroupInstanceID string
	ErrorCode       int16
}

// Decode decodes a response body at version into r.
func (r *LeaveGroupResponse) Decode(body []byte, version int16) error {
	if err := checkVersion(KeyLeaveGroup, version); err != nil {
		return fmt.Errorf("decode leave group response: %w", err)
	}
	*r = LeaveGroupResponse{}
	flex := version >= 4
	rd := Reader{Src: body}
	if version >= 1 {
		rd.Int32() // ThrottleMillis
	}
	r.ErrorCode = rd.Int16()
	if version >= 3 {
		if n := rd.arrayLen(flex, 5); n >= 0 { // v4: empty id, null instance, error, tags
			r.Members = make([]LeaveGroupMemberResponse, 0, n)
			for i := 0; i < n && rd.err == nil; i++ {
				m := LeaveGroupMemberResponse{MemberID: rd.str(flex), GroupInstanceID: rd.nstr(flex), ErrorCode: rd.Int16()}
				rd.tags(flex)
				r.Members = append(r.Members, m)
			}
		}
	}
	rd.tags(flex)
	if err := rd.Complete(); err != nil {
		return fmt.Errorf("decode leave group response v%d: %w", version, err)
	}
	return nil
}
