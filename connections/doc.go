// Package connections owns the state of the WebSocket connections a node holds: their records, kept in
// Badger under the node's data directory, and their ids. A connection id begins with the id of the node
// that holds the socket ([NodeID], [NewID], [NodeOf]), so a post to a connection goes straight to that
// node with no lookup. The records are node-local and last one run: [Open] deletes the records left by
// the node's previous run, whose sockets died with it.
package connections
