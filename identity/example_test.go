package identity_test

import (
	"fmt"

	"github.com/ksb-project/ksb/identity"
)

func Example() {
	// A published test mnemonic; a real node reads its own with identity.Read.
	id, err := identity.New("alcohol woman abuse must during monitor noble actual mixed trade anger aisle")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Address("tthor"))
	fmt.Println(id.PeerID())
	sig := id.Sign([]byte("hello"))
	fmt.Println(identity.Verify(id.PubKey(), []byte("hello"), sig))
	// Output:
	// tthor1ls33ayg26kmltw7jjy55p32ghjna09zp6z69y8
	// 16Uiu2HAmE5MQwafKEkn7GiobBdMJkvnWVKMBzh58vrSn1f7ueJqQ
	// <nil>
}
