package wire

import "strconv"

// Kafka error codes that callers of this package branch on. ErrorName covers
// every code the protocol guide lists.
const (
	ErrUnknownServerError          int16 = -1
	ErrNone                        int16 = 0
	ErrOffsetOutOfRange            int16 = 1
	ErrCorruptMessage              int16 = 2
	ErrUnknownTopicOrPartition     int16 = 3
	ErrInvalidFetchSize            int16 = 4
	ErrLeaderNotAvailable          int16 = 5
	ErrNotLeaderOrFollower         int16 = 6
	ErrRequestTimedOut             int16 = 7
	ErrBrokerNotAvailable          int16 = 8
	ErrReplicaNotAvailable         int16 = 9
	ErrMessageTooLarge             int16 = 10
	ErrNetworkException            int16 = 13
	ErrCoordinatorLoadInProgress   int16 = 14
	ErrCoordinatorNotAvailable     int16 = 15
	ErrNotCoordinator              int16 = 16
	ErrIllegalGeneration           int16 = 22
	ErrInconsistentGroupProtocol   int16 = 23
	ErrInvalidGroupID              int16 = 24
	ErrUnknownMemberID             int16 = 25
	ErrInvalidSessionTimeout       int16 = 26
	ErrRebalanceInProgress         int16 = 27
	ErrGroupAuthorizationFailed    int16 = 30
	ErrTopicAuthorizationFailed    int16 = 29
	ErrClusterAuthorizationFailed  int16 = 31
	ErrUnsupportedSaslMechanism    int16 = 33
	ErrIllegalSaslState            int16 = 34
	ErrUnsupportedVersion          int16 = 35
	ErrInvalidRequest              int16 = 42
	ErrKafkaStorageError           int16 = 56
	ErrSaslAuthenticationFailed    int16 = 58
	ErrGroupIDNotFound             int16 = 69
	ErrFetchSessionIDNotFound      int16 = 70
	ErrInvalidFetchSessionEpoch    int16 = 71
	ErrListenerNotFound            int16 = 72
	ErrFencedLeaderEpoch           int16 = 74
	ErrUnknownLeaderEpoch          int16 = 75
	ErrUnsupportedCompressionType  int16 = 76
	ErrOffsetNotAvailable          int16 = 78
	ErrMemberIDRequired            int16 = 79
	ErrPreferredLeaderNotAvailable int16 = 80
	ErrGroupMaxSizeReached         int16 = 81
	ErrFencedInstanceID            int16 = 82
	ErrUnknownTopicID              int16 = 100
	ErrInconsistentTopicID         int16 = 103
	ErrFetchSessionTopicIDError    int16 = 106
	ErrOffsetMovedToTieredStorage  int16 = 109
	ErrFencedMemberEpoch           int16 = 110
	ErrUnreleasedInstanceID        int16 = 111
	ErrStaleMemberEpoch            int16 = 113
)

// Kafka error codes of the producer APIs (Produce, InitProducerId) beyond
// those above, which they share (ErrCorruptMessage, ErrMessageTooLarge,
// ErrRequestTimedOut, ErrNotLeaderOrFollower, ErrTopicAuthorizationFailed,
// ErrClusterAuthorizationFailed, ErrKafkaStorageError, ...).
const (
	ErrRecordListTooLarge           int16 = 18
	ErrNotEnoughReplicas            int16 = 19
	ErrNotEnoughReplicasAfterAppend int16 = 20
	ErrInvalidRequiredAcks          int16 = 21
	ErrInvalidTimestamp             int16 = 32
	ErrOutOfOrderSequenceNumber     int16 = 45
	ErrDuplicateSequenceNumber      int16 = 46
	ErrInvalidProducerEpoch         int16 = 47
	ErrUnknownProducerID            int16 = 59
	ErrInvalidRecord                int16 = 87
	ErrThrottlingQuotaExceeded      int16 = 89
	ErrProducerFenced               int16 = 90
	ErrTransactionAbortable         int16 = 120
)

// ErrorName returns the name of a Kafka error code as the protocol guide
// lists it, e.g. "OFFSET_OUT_OF_RANGE" for 1 and "NONE" for 0. An unknown
// code yields "UNKNOWN_ERROR_CODE_<code>".
func ErrorName(code int16) string {
	if code == -1 {
		return "UNKNOWN_SERVER_ERROR"
	}
	if code >= 0 && int(code) < len(errorNames) {
		return errorNames[code]
	}
	return "UNKNOWN_ERROR_CODE_" + strconv.Itoa(int(code))
}

// errorNames is indexed by error code; the names are those of the Kafka
// protocol guide (https://kafka.apache.org/protocol#protocol_error_codes).
var errorNames = [...]string{
	0:   "NONE",
	1:   "OFFSET_OUT_OF_RANGE",
	2:   "CORRUPT_MESSAGE",
	3:   "UNKNOWN_TOPIC_OR_PARTITION",
	4:   "INVALID_FETCH_SIZE",
	5:   "LEADER_NOT_AVAILABLE",
	6:   "NOT_LEADER_OR_FOLLOWER",
	7:   "REQUEST_TIMED_OUT",
	8:   "BROKER_NOT_AVAILABLE",
	9:   "REPLICA_NOT_AVAILABLE",
	10:  "MESSAGE_TOO_LARGE",
	11:  "STALE_CONTROLLER_EPOCH",
	12:  "OFFSET_METADATA_TOO_LARGE",
	13:  "NETWORK_EXCEPTION",
	14:  "COORDINATOR_LOAD_IN_PROGRESS",
	15:  "COORDINATOR_NOT_AVAILABLE",
	16:  "NOT_COORDINATOR",
	17:  "INVALID_TOPIC_EXCEPTION",
	18:  "RECORD_LIST_TOO_LARGE",
	19:  "NOT_ENOUGH_REPLICAS",
	20:  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
	21:  "INVALID_REQUIRED_ACKS",
	22:  "ILLEGAL_GENERATION",
	23:  "INCONSISTENT_GROUP_PROTOCOL",
	24:  "INVALID_GROUP_ID",
	25:  "UNKNOWN_MEMBER_ID",
	26:  "INVALID_SESSION_TIMEOUT",
	27:  "REBALANCE_IN_PROGRESS",
	28:  "INVALID_COMMIT_OFFSET_SIZE",
	29:  "TOPIC_AUTHORIZATION_FAILED",
	30:  "GROUP_AUTHORIZATION_FAILED",
	31:  "CLUSTER_AUTHORIZATION_FAILED",
	32:  "INVALID_TIMESTAMP",
	33:  "UNSUPPORTED_SASL_MECHANISM",
	34:  "ILLEGAL_SASL_STATE",
	35:  "UNSUPPORTED_VERSION",
	36:  "TOPIC_ALREADY_EXISTS",
	37:  "INVALID_PARTITIONS",
	38:  "INVALID_REPLICATION_FACTOR",
	39:  "INVALID_REPLICA_ASSIGNMENT",
	40:  "INVALID_CONFIG",
	41:  "NOT_CONTROLLER",
	42:  "INVALID_REQUEST",
	43:  "UNSUPPORTED_FOR_MESSAGE_FORMAT",
	44:  "POLICY_VIOLATION",
	45:  "OUT_OF_ORDER_SEQUENCE_NUMBER",
	46:  "DUPLICATE_SEQUENCE_NUMBER",
	47:  "INVALID_PRODUCER_EPOCH",
	48:  "INVALID_TXN_STATE",
	49:  "INVALID_PRODUCER_ID_MAPPING",
	50:  "INVALID_TRANSACTION_TIMEOUT",
	51:  "CONCURRENT_TRANSACTIONS",
	52:  "TRANSACTION_COORDINATOR_FENCED",
	53:  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
	54:  "SECURITY_DISABLED",
	55:  "OPERATION_NOT_ATTEMPTED",
	56:  "KAFKA_STORAGE_ERROR",
	57:  "LOG_DIR_NOT_FOUND",
	58:  "SASL_AUTHENTICATION_FAILED",
	59:  "UNKNOWN_PRODUCER_ID",
	60:  "REASSIGNMENT_IN_PROGRESS",
	61:  "DELEGATION_TOKEN_AUTH_DISABLED",
	62:  "DELEGATION_TOKEN_NOT_FOUND",
	63:  "DELEGATION_TOKEN_OWNER_MISMATCH",
	64:  "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
	65:  "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
	66:  "DELEGATION_TOKEN_EXPIRED",
	67:  "INVALID_PRINCIPAL_TYPE",
	68:  "NON_EMPTY_GROUP",
	69:  "GROUP_ID_NOT_FOUND",
	70:  "FETCH_SESSION_ID_NOT_FOUND",
	71:  "INVALID_FETCH_SESSION_EPOCH",
	72:  "LISTENER_NOT_FOUND",
	73:  "TOPIC_DELETION_DISABLED",
	74:  "FENCED_LEADER_EPOCH",
	75:  "UNKNOWN_LEADER_EPOCH",
	76:  "UNSUPPORTED_COMPRESSION_TYPE",
	77:  "STALE_BROKER_EPOCH",
	78:  "OFFSET_NOT_AVAILABLE",
	79:  "MEMBER_ID_REQUIRED",
	80:  "PREFERRED_LEADER_NOT_AVAILABLE",
	81:  "GROUP_MAX_SIZE_REACHED",
	82:  "FENCED_INSTANCE_ID",
	83:  "ELIGIBLE_LEADERS_NOT_AVAILABLE",
	84:  "ELECTION_NOT_NEEDED",
	85:  "NO_REASSIGNMENT_IN_PROGRESS",
	86:  "GROUP_SUBSCRIBED_TO_TOPIC",
	87:  "INVALID_RECORD",
	88:  "UNSTABLE_OFFSET_COMMIT",
	89:  "THROTTLING_QUOTA_EXCEEDED",
	90:  "PRODUCER_FENCED",
	91:  "RESOURCE_NOT_FOUND",
	92:  "DUPLICATE_RESOURCE",
	93:  "UNACCEPTABLE_CREDENTIAL",
	94:  "INCONSISTENT_VOTER_SET",
	95:  "INVALID_UPDATE_VERSION",
	96:  "FEATURE_UPDATE_FAILED",
	97:  "PRINCIPAL_DESERIALIZATION_FAILURE",
	98:  "SNAPSHOT_NOT_FOUND",
	99:  "POSITION_OUT_OF_RANGE",
	100: "UNKNOWN_TOPIC_ID",
	101: "DUPLICATE_BROKER_REGISTRATION",
	102: "BROKER_ID_NOT_REGISTERED",
	103: "INCONSISTENT_TOPIC_ID",
	104: "INCONSISTENT_CLUSTER_ID",
	105: "TRANSACTIONAL_ID_NOT_FOUND",
	106: "FETCH_SESSION_TOPIC_ID_ERROR",
	107: "INELIGIBLE_REPLICA",
	108: "NEW_LEADER_ELECTED",
	109: "OFFSET_MOVED_TO_TIERED_STORAGE",
	110: "FENCED_MEMBER_EPOCH",
	111: "UNRELEASED_INSTANCE_ID",
	112: "UNSUPPORTED_ASSIGNOR",
	113: "STALE_MEMBER_EPOCH",
	114: "MISMATCHED_ENDPOINT_TYPE",
	115: "UNSUPPORTED_ENDPOINT_TYPE",
	116: "UNKNOWN_CONTROLLER_ID",
	117: "UNKNOWN_SUBSCRIPTION_ID",
	118: "TELEMETRY_TOO_LARGE",
	119: "INVALID_REGISTRATION",
	120: "TRANSACTION_ABORTABLE",
	121: "INVALID_RECORD_STATE",
	122: "SHARE_SESSION_NOT_FOUND",
	123: "INVALID_SHARE_SESSION_EPOCH",
	124: "FENCED_STATE_EPOCH",
	125: "INVALID_VOTER_KEY",
	126: "DUPLICATE_VOTER",
	127: "VOTER_NOT_FOUND",
	128: "INVALID_REGULAR_EXPRESSION",
	129: "REBOOTSTRAP_REQUIRED",
	130: "STREAMS_INVALID_TOPOLOGY",
	131: "STREAMS_INVALID_TOPOLOGY_EPOCH",
	132: "STREAMS_TOPOLOGY_FENCED",
	133: "SHARE_SESSION_LIMIT_REACHED",
	134: "GROUP_DELETION_FAILED",
	135: "STREAMS_TOPOLOGY_DESCRIPTION_UPDATE_FAILED",
	136: "CONTROLLER_ID_NOT_REGISTERED",
}
