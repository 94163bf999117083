package field_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/identity"
	"github.com/ksb-project/ksb/internal/field"
)

// A published BIP39 test vector (test key only).
const testMnemonic = "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title"

func TestVault(t *testing.T) {
	for _, v := range []string{
		"thorpub1addwnpepqf5yqy3l6r0ckq4kmp0agqrwqcnl2vjaljm76aykqzyh5wq3xqyvs6hzdfs",
		"02" + strings.Repeat("ab", 32),
		"a",
		strings.Repeat("aZ09._:-", field.MaxVaultLen/8),
	} {
		if err := field.Vault(v); err != nil {
			t.Errorf("Vault(%q) = %v", v, err)
		}
	}
	for _, v := range []string{
		"", strings.Repeat("a", field.MaxVaultLen+1), "bad!vault#chars", "a/b", "a b", "a\x00", "é", `a"b`, "a\n", "a~",
	} {
		if err := field.Vault(v); !errors.Is(err, field.ErrVault) {
			t.Errorf("Vault(%q) = %v, want ErrVault", v, err)
		}
	}
}

func TestOwnerAndAddress(t *testing.T) {
	id, err := identity.New(testMnemonic)
	if err != nil {
		t.Fatal(err)
	}
	if err := field.OwnerKey(id.PubKey()); err != nil {
		t.Errorf("OwnerKey(node key) = %v", err)
	}
	for _, k := range [][]byte{nil, id.PubKey()[:32], append(id.PubKey(), 0), append([]byte{4}, id.PubKey()[1:]...), make([]byte, 33)} {
		if err := field.OwnerKey(k); !errors.Is(err, field.ErrOwner) {
			t.Errorf("OwnerKey(%x) = %v, want ErrOwner", k, err)
		}
	}
	a := id.Address("thor")
	if err := field.Address(a, "thor"); err != nil {
		t.Errorf("Address(%q) = %v", a, err)
	}
	for _, bad := range []struct{ a, hrp string }{
		{a, "tthor"}, {strings.ToUpper(a), "thor"}, {"thor1notanaddress", "thor"}, {"", "thor"}, {a + strings.Repeat("q", 90), "thor"},
	} {
		if err := field.Address(bad.a, bad.hrp); !errors.Is(err, field.ErrAddress) {
			t.Errorf("Address(%q, %q) = %v, want ErrAddress", bad.a, bad.hrp, err)
		}
	}
}

func TestDigestAndSize(t *testing.T) {
	if err := field.Digest(make([]byte, field.DigestSize)); err != nil {
		t.Error(err)
	}
	for _, n := range []int{0, 31, 33} {
		if err := field.Digest(make([]byte, n)); !errors.Is(err, field.ErrDigest) {
			t.Errorf("Digest of %d bytes = %v", n, err)
		}
	}
	h := strings.Repeat("0f", field.DigestSize)
	if d, err := field.ParseDigestHex(h); err != nil || d[0] != 0x0f {
		t.Errorf("ParseDigestHex = %x, %v", d, err)
	}
	for _, s := range []string{"", h[:62], strings.ToUpper(h), h + "00", strings.Repeat("zz", 32)} {
		if _, err := field.ParseDigestHex(s); !errors.Is(err, field.ErrDigest) {
			t.Errorf("ParseDigestHex(%q) = %v", s, err)
		}
	}
	for _, n := range []uint64{1, field.MaxSize} {
		if err := field.Size(n); err != nil {
			t.Errorf("Size(%d) = %v", n, err)
		}
	}
	for _, n := range []uint64{0, field.MaxSize + 1} {
		if err := field.Size(n); !errors.Is(err, field.ErrSize) {
			t.Errorf("Size(%d) = %v", n, err)
		}
	}
}

func ExampleVault() {
	fmt.Println(field.Vault("thorpub1addwnpepqf5yqy3l6r0ckq4kmp0agqrwqcnl2vjaljm76aykqzyh5wq3xqyvs6hzdfs"))
	fmt.Println(field.Vault("bad!vault#chars"))
	// Output:
	// <nil>
	// bad vault key "bad!vault#chars": character '!' at 3 not allowed (want [A-Za-z0-9._:-])
}
