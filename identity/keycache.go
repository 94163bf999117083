package identity

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// keyCacheSize bounds the parsed public keys and peer-ID keys kept in
// memory: a compressed key's parse recovers its y coordinate (a modular
// square root, about 30 µs), and a holder's push handler met the same few
// keys (pusher, owner, holder) up to eight times per push. 4,096 covers an
// active set several times THORChain's (about 100 nodes) and its recent
// owners; a key parsed once is about 100 bytes, so the cache stays under
// 1 MiB. Keys of strangers can evict others, which costs a parse again,
// never a wrong answer: only keys that parsed are kept.
const keyCacheSize = 4096

// parsedKeys maps a 33-byte compressed key to its parsed point; peerKeys a
// peer ID to the compressed secp256k1 key it embeds. Entries are immutable
// (ParsePubKey's callers only read the point).
var (
	parsedKeys = mustLRU[[PubKeySize]byte, *secp256k1.PublicKey]()
	peerKeys   = mustLRU[peer.ID, [PubKeySize]byte]()
)

func mustLRU[K comparable, V any]() *lru.Cache[K, V] {
	c, err := lru.New[K, V](keyCacheSize)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	return c
}
