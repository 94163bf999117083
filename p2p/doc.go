// Package p2p is ksb's libp2p layer: the node's host, the stream protocols
// that move sealed keyshare copies between owners and holders, and the
// gossip topics. docs/protocol.md specifies the wire format; the frames are
// generated from proto/ksb/p2p/v2 (package internal/pb).
//
//   - NewHost starts a host with the node's key: TCP with Noise, QUIC, no
//     relay, a connection manager and explicit resource-manager Limits.
//     ConnectPeers protects known peers (the active nodes) in the connection
//     manager, allowlists them in the resource manager, and dials them;
//     KnownPeers.Set does the same for the whole known set and releases the
//     peers that left it (nodes churned out).
//   - Service serves /ksb/push/2.0.0 (a holder accepts one copy of a share
//     version for a custody the chain assigned to it, from the commitment's
//     owner or the custody's repair source, checks it against the committed
//     Merkle root, stores it durably and answers with a signed Receipt, or
//     refuses with a typed *RefusedError and stores nothing) and
//     /ksb/fetch/2.0.0 (a holder returns an owner's copies, each with its
//     custody, copy index and commit path, to that owner only). Before
//     reading anything it decides who the remote peer is — an active node,
//     an owner of copies held here that is not active, or a stranger — and
//     serves it from that class's allowance (peerclass.go; strangers get an
//     immediate refusal); a push header is checked against the holder's view
//     of the chain's custodies (Custodies) before the copy is read. Push and
//     Fetch are the client sides; Service.Push keeps to the holder's
//     per-peer allowance and retries a busy holder with backoff.
//   - Gossip runs gossipsub, with peer scoring (rejected messages graylist
//     their relay), and two validated topics: signed heartbeats (who is
//     alive, what it holds; PeerClockOffset measures this node's clock
//     against its peers') and signed recovery requests, which holders answer
//     over /ksb/return/2.0.0 to the requesting owner's peer ID only, offering
//     first and sending only what the recovering owner accepts (Recover).
//     Requests are not judged by the requester's clock; nonce memory,
//     per-owner limits and the owner's acceptance bound replays. A peer that
//     reconnects has its older, possibly dead connections pinged and closed.
//
// Holders are not chosen here: the chain assigns them (package attest).
//
// Every peer is authenticated by the transport's handshake (Noise on TCP,
// TLS 1.3 inside QUIC), and a peer ID embeds the node's
// secp256k1 key, so "the remote peer is the owner" is a comparison of the
// key in the peer ID (or its address) with the owner the chain names.
package p2p
