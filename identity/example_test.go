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

func ExampleParseMnemonic() {
	// A steel backup keeps the first four letters of each word, numbered.
	m, err := identity.ParseMnemonic(`
		1. alco  2. woma  3. abus  4. must
		5. duri  6. moni  7. nobl  8. actu
		9. mixe 10. trad 11. ange 12. aisl`)
	fmt.Println(m, err)

	_, err = identity.ParseMnemonic("alcohol woman abuse must during monitor noble actual mixed trade anger ai\u200bsle")
	fmt.Println(err)
	// Output:
	// alcohol woman abuse must during monitor noble actual mixed trade anger aisle <nil>
	// invalid BIP39 mnemonic: word 12 contains an invisible character, U+200B ZERO WIDTH SPACE: delete and retype that word
}
