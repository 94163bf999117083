package keyshare_test

import (
	"fmt"
	"log"

	"github.com/ksb-project/ksb/keyshare"
)

func ExampleParseFile() {
	info, err := keyshare.ParseFile("testdata/go-tss-eddsa-0.json")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Kind, info.Algorithm, info.Parties)
	fmt.Println(info.VaultPubKey)

	_, err = keyshare.Parse([]byte(`{"name": "not a share"}`))
	fmt.Println(err)
	// Output:
	// go-tss eddsa 4
	// thorpub1zcjduepq665vjeq34n7ccpvdl8t6akgls3c6u2uq242vpag2d9knstxymxfqq2ufwe
	// not a keyshare file: neither go-tss KeygenLocalState nor tss-lib save data
}
