package envelope_test

import (
	"errors"
	"fmt"

	"github.com/ksb-project/ksb/envelope"
)

func Example() {
	// A published BIP39 test vector: never seal anything real with a
	// published mnemonic.
	mnemonic := "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length"
	share := []byte(`{"pub_key":"thorpub1addwnpepq…","participant_keys":["…"]}`)

	// Production code passes nil options (work factor 18, about a second);
	// a low work factor keeps this example fast.
	blob, err := envelope.Seal(share, mnemonic, &envelope.SealOptions{WorkFactor: 10, AllowLowWorkFactor: true})
	if err != nil {
		fmt.Println(err)
		return
	}

	out, err := envelope.Open(blob, mnemonic, nil)
	fmt.Println(string(out), err)

	wrong := "panda eyebrow bullet gorilla call smoke muffin taste mesh discover soft ostrich alcohol speed nation flash devote level hobby quick inner drive ghost inside"
	_, err = envelope.Open(blob, wrong, nil)
	fmt.Println(errors.Is(err, envelope.ErrWrongMnemonic))
	// Output:
	// {"pub_key":"thorpub1addwnpepq…","participant_keys":["…"]} <nil>
	// true
}

func ExampleCheckMnemonic() {
	// Valid BIP39, but far too repetitive to protect anything.
	weak := "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"
	fmt.Printf("%.2f\n", envelope.Entropy(weak))
	fmt.Println(envelope.CheckMnemonic(weak))
	// Output:
	// 2.57
	// envelope: mnemonic refused: byte entropy 2.57 bits is below the minimum 3.67
}
