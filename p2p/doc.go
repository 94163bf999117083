// Package p2p is ksb's libp2p layer: the node's host, the stream protocols
// that move sealed keyshare blobs between owners and holders, the gossip
// topics, and holder selection. docs/protocol.md specifies the wire format.
//
//   - NewHost starts a host with the node's key: TCP with Noise, QUIC, no
//     relay, a connection manager and explicit resource-manager Limits.
//     ConnectPeers protects known peers (the active nodes) in the connection
//     manager, allowlists them in the resource manager, and dials them.
//   - Service serves /ksb/push/1.0.0 (a holder accepts a blob from its owner,
//     stores it durably and answers with a signed Receipt, or refuses with a
//     typed *RefusedError and stores nothing) and /ksb/fetch/1.0.0 (a holder
//     returns an owner's blobs to that owner only). Before reading anything
//     it decides who the remote peer is — an active node, an owner of blobs
//     held here that is not active, or a stranger — and serves it from that
//     class's allowance (peerclass.go; strangers get an immediate refusal).
//     Push and Fetch are the client sides; Service.Push keeps to the
//     holder's per-peer allowance and retries a busy holder with backoff.
//   - Gossip runs gossipsub, with peer scoring (rejected messages graylist
//     their relay), and two validated topics: signed heartbeats (who is
//     alive, what it holds; HeardWithin feeds holder selection;
//     PeerClockOffset measures this node's clock against its peers') and
//     signed recovery requests, which holders answer over /ksb/return/2.0.0
//     to the requesting owner's peer ID only, offering first and sending
//     only what the recovering owner accepts (Recover). Requests are not
//     judged by the requester's clock; nonce memory, per-owner limits and
//     the owner's acceptance bound replays. A peer that reconnects has its
//     older, possibly dead connections pinged and closed.
//   - SelectHolders draws holders for a share (random or vault strategy).
//
// Every peer is authenticated by the transport's handshake (Noise on TCP,
// TLS 1.3 inside QUIC), and a peer ID embeds the node's
// secp256k1 key, so "the remote peer is the owner" is a comparison of the
// key in the peer ID with the owner key in a header or an entry.
package p2p
