package sdk

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors of the host calls: what Gatehouse answered a function's request.
var (
	// ErrGone means the connection is gone (closed, never opened, or on a node that is gone).
	ErrGone = errors.New("gatehouse: connection gone")
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("gatehouse: key not found")
	// ErrTooLarge means the data is over a limit (a message over the API's limit, a value over the store's).
	ErrTooLarge = errors.New("gatehouse: too large")
	// ErrLimitExceeded means the client is not reading its messages; it was disconnected.
	ErrLimitExceeded = errors.New("gatehouse: limit exceeded")
	// ErrInvalid means the request was malformed: an empty id, a key with characters keys cannot have.
	ErrInvalid = errors.New("gatehouse: invalid request")
	// ErrExists means the key exists already (CreateKey).
	ErrExists = errors.New("gatehouse: key exists")
	// ErrUnavailable means host calls are not available: the function runs outside Gatehouse.
	ErrUnavailable = errors.New("gatehouse: host calls are not available here")
	// ErrHost means Gatehouse could not do what was asked; trying again may work.
	ErrHost = errors.New("gatehouse: host call failed")
	// ErrNotAllowed means the function may not do it: a subject its allowedPublishSubjects do not
	// list (Publish).
	ErrNotAllowed = errors.New("gatehouse: not allowed")
)

// Host operations; the numbers are part of the ABI (docs/abi.md).
const (
	opPostToConnection = 1
	opGetConnection    = 2
	opDeleteConnection = 3
	opBroadcast        = 4
	opKVGet            = 10
	opKVPut            = 11
	opKVCreate         = 12
	opKVDelete         = 13
	opKVList           = 14
	opPublish          = 30
)

func hostStatusError(status uint32) error {
	switch status {
	case 0:
		return nil
	case 1:
		return ErrNotFound
	case 2:
		return ErrTooLarge
	case 3:
		return ErrLimitExceeded
	case 4:
		return ErrInvalid
	case 5:
		return ErrExists
	case 7:
		return ErrUnavailable
	case 8:
		return ErrNotAllowed
	}
	return fmt.Errorf("%w (status %d)", ErrHost, status)
}

func appendStr(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// gone turns a not-found status of a connection operation into ErrGone.
func gone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrGone
	}
	return err
}

// PostToConnection sends data to a WebSocket client, as a POST to @connections does: from any
// function, to a connection on any node of the stack.
func PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	_, err := hostCall(opPostToConnection, append(appendStr(nil, connectionID), data...))
	return gone(err)
}

// Connection describes a WebSocket connection, as a GET of @connections does.
type Connection struct {
	ConnectedAt  time.Time `json:"connectedAt"`
	LastActiveAt time.Time `json:"lastActiveAt"`
	Identity     struct {
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"identity"`
}

// GetConnection describes a WebSocket connection.
func GetConnection(ctx context.Context, connectionID string) (Connection, error) {
	out, err := hostCall(opGetConnection, appendStr(nil, connectionID))
	if err != nil {
		return Connection{}, gone(err)
	}
	var c Connection
	if err := json.Unmarshal(out, &c); err != nil {
		return Connection{}, fmt.Errorf("%w: %v", ErrHost, err)
	}
	return c, nil
}

// DeleteConnection closes a WebSocket connection; its $disconnect follows.
func DeleteConnection(ctx context.Context, connectionID string) error {
	_, err := hostCall(opDeleteConnection, appendStr(nil, connectionID))
	return gone(err)
}

// BroadcastResult says what became of a broadcast.
type BroadcastResult struct {
	// Sent counts the connections the message was queued for.
	Sent int `json:"sent"`
	// Gone lists the connections that were gone.
	Gone []string `json:"gone"`
}

// Broadcast sends the same data to many WebSocket connections in one call: one message per node of
// the stack, however many of its connections are named.
func Broadcast(ctx context.Context, connectionIDs []string, data []byte) (BroadcastResult, error) {
	req := binary.LittleEndian.AppendUint32(nil, uint32(len(connectionIDs)))
	for _, id := range connectionIDs {
		req = appendStr(req, id)
	}
	out, err := hostCall(opBroadcast, append(req, data...))
	if err != nil {
		return BroadcastResult{}, err
	}
	var r BroadcastResult
	if err := json.Unmarshal(out, &r); err != nil {
		return BroadcastResult{}, fmt.Errorf("%w: %v", ErrHost, err)
	}
	return r, nil
}

// Publish stores data as a message on subject of the stack's event bus (dot-separated tokens such
// as "orders.created", no wildcards): the functions with an event source matching it receive it.
// The function's allowedPublishSubjects must match subject (ErrNotAllowed); a message is at most
// 1 MiB (ErrTooLarge).
func Publish(ctx context.Context, subject string, data []byte) error {
	_, err := hostCall(opPublish, append(appendStr(nil, subject), data...))
	return err
}

// GetKey returns the value of a key of the stack's key-value store.
func GetKey(ctx context.Context, key string) ([]byte, error) {
	return hostCall(opKVGet, appendStr(nil, key))
}

// PutKey stores value under key, replacing any value it has.
func PutKey(ctx context.Context, key string, value []byte) error {
	_, err := hostCall(opKVPut, append(appendStr(nil, key), value...))
	return err
}

// CreateKey stores value under key unless the key exists (ErrExists). A ttl over 0 makes the key
// expire after that long (to the millisecond, at most about 49 days).
func CreateKey(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	req := appendStr(nil, key)
	req = binary.LittleEndian.AppendUint32(req, uint32(min(max(ttl.Milliseconds(), 0), 1<<32-1)))
	_, err := hostCall(opKVCreate, append(req, value...))
	return err
}

// DeleteKey deletes a key; deleting a key that does not exist is not an error.
func DeleteKey(ctx context.Context, key string) error {
	_, err := hostCall(opKVDelete, appendStr(nil, key))
	return err
}

// ListKeys lists the keys that start with prefix ("" lists them all), sorted.
func ListKeys(ctx context.Context, prefix string) ([]string, error) {
	out, err := hostCall(opKVList, appendStr(nil, prefix))
	if err != nil {
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal(out, &keys); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHost, err)
	}
	return keys, nil
}
