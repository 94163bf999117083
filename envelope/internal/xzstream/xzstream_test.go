package xzstream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ksb-project/ksb/envelope/internal/xzstream"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeStockXZ(t *testing.T) {
	want := read(t, "eddsa.json")
	for _, name := range []string{
		"eddsa.none.xz", "eddsa.crc32.xz", "eddsa.crc64.xz", "eddsa.sha256.xz",
		"eddsa.blocks.xz", "eddsa.sized.xz",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := xzstream.Decode(read(t, name), int64(len(want)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("decoded %d bytes, differ from the original %d", len(got), len(want))
			}
		})
	}
	got, err := xzstream.Decode(read(t, "empty.xz"), 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty.xz: %q, %v", got, err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("x"), read(t, "eddsa.json"), bytes.Repeat([]byte("ab"), 100000)} {
		z, err := xzstream.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		if z[7] != 0x04 {
			t.Errorf("check type %#x, want CRC64 (0x04)", z[7])
		}
		got, err := xzstream.Decode(z, int64(len(p)))
		if err != nil {
			t.Fatalf("%d bytes: %v", len(p), err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: round trip differs", len(p))
		}
	}
}

func TestDecodeOutputLimit(t *testing.T) {
	want := read(t, "eddsa.json")
	for _, name := range []string{"eddsa.crc64.xz", "eddsa.blocks.xz", "eddsa.sized.xz"} {
		got, err := xzstream.Decode(read(t, name), int64(len(want))-1)
		if !errors.Is(err, xzstream.ErrTooLarge) || got != nil {
			t.Errorf("%s with limit one byte short: %d bytes, %v; want ErrTooLarge", name, len(got), err)
		}
	}
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeBombStopsAtLimit(t *testing.T) {
	const limit = 1 << 20
	z := read(t, "zeros16m.xz") // 2.5 KB that expands to 16 MiB
	var err error
	n := allocated(func() { _, err = xzstream.Decode(z, limit) })
	if !errors.Is(err, xzstream.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// The output buffer may grow to about twice the limit, plus the
	// dictionary (itself capped by the limit) and read buffers.
	if n > 6*limit {
		t.Fatalf("allocated %d bytes decoding with a %d-byte limit", n, limit)
	}
}

// setDictCode rewrites the LZMA2 dictionary-size property of the first block
// header (a single-filter header without sizes: flags, filter id 0x21, props
// size 1, props) and fixes the header CRC32.
func setDictCode(t *testing.T, z []byte, code byte) []byte {
	t.Helper()
	z = bytes.Clone(z)
	h := z[12:]
	size := (int(h[0]) + 1) * 4
	if h[1] != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected block header % x", h[:size])
	}
	h[4] = code
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return z
}

func TestDecodeHugeDeclaredDictionary(t *testing.T) {
	want := read(t, "eddsa.json")
	z := setDictCode(t, read(t, "eddsa.crc64.xz"), 40) // declares 4 GiB
	var got []byte
	var err error
	n := allocated(func() { got, err = xzstream.Decode(z, 1<<20) })
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("decode: %v", err)
	}
	if n > 8<<20 {
		t.Fatalf("allocated %d bytes for a block that declares a 4 GiB dictionary", n)
	}

	if _, err := xzstream.Decode(setDictCode(t, read(t, "eddsa.crc64.xz"), 41), 1<<20); !errors.Is(err, xzstream.ErrFormat) {
		t.Fatalf("dictionary code 41: %v, want ErrFormat", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	hello := read(t, "hello.xz")
	crc64 := read(t, "eddsa.crc64.xz")
	for name, z := range map[string][]byte{
		"empty input":           nil,
		"not xz":                []byte("this is not an xz stream at all, just text"),
		"delta filter chain":    read(t, "eddsa.delta.xz"),
		"two streams":           append(bytes.Clone(hello), hello...),
		"stream padding":        append(bytes.Clone(hello), 0, 0, 0, 0),
		"trailing garbage":      append(bytes.Clone(hello), 'x'),
		"gzip":                  {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"footer magic":          append(bytes.Clone(crc64[:len(crc64)-2]), 'Z', 'Y'),
		"leading byte":          append([]byte{0}, hello...),
		"unsupported check 0x2": func() []byte { z := bytes.Clone(hello); z[7] = 0x02; return z }(),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := xzstream.Decode(z, 1<<20)
			if !errors.Is(err, xzstream.ErrFormat) || got != nil {
				t.Fatalf("got %d bytes, err %v; want ErrFormat", len(got), err)
			}
		})
	}
}

// positions returns the byte offsets the truncation and bit-flip tests try:
// every offset of small files, and for larger ones every offset of the
// stream header, the first block header and the tail (index and footer) plus
// every 11th offset in between, which keeps the tests fast under -race.
func positions(n int) []int {
	var ps []int
	for i := 0; i < n; i++ {
		if n <= 128 || i < 32 || i >= n-64 || i%11 == 0 {
			ps = append(ps, i)
		}
	}
	return ps
}

func TestDecodeTruncated(t *testing.T) {
	for _, name := range []string{"hello.xz", "eddsa.blocks.xz"} {
		z := read(t, name)
		for _, n := range positions(len(z)) {
			if got, err := xzstream.Decode(z[:n], 1<<20); !errors.Is(err, xzstream.ErrFormat) || got != nil {
				t.Fatalf("%s truncated to %d of %d bytes: %d bytes, err %v; want ErrFormat", name, n, len(z), len(got), err)
			}
		}
	}
}

func TestDecodeBitFlips(t *testing.T) {
	for _, name := range []string{"hello.xz", "eddsa.crc64.xz", "eddsa.sized.xz"} {
		z := read(t, name)
		for _, i := range positions(len(z)) {
			c := bytes.Clone(z)
			c[i] ^= 0x10
			if got, err := xzstream.Decode(c, 1<<20); err == nil {
				t.Fatalf("%s: flipping a bit of byte %d still decodes (%d bytes)", name, i, len(got))
			}
		}
	}
}

// buildXZ assembles one xz stream (check type none) whose blocks hold the
// given raw LZMA2 data, each behind a 12-byte block header declaring LZMA2
// with a 4 KiB dictionary, with a matching index and footer. uncompressed
// gives each block's output size for the index.
func buildXZ(lzma2 [][]byte, uncompressed []int) []byte {
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	uvarint := func(b []byte, v uint64) []byte {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		return append(b, byte(v))
	}
	z := []byte{0xFD, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x00}
	z = le32(z, crc32.ChecksumIEEE(z[6:8]))
	var index []byte
	index = uvarint(append(index, 0x00), uint64(len(lzma2)))
	for i, data := range lzma2 {
		h := []byte{0x02, 0x00, 0x21, 0x01, 0x00, 0x00, 0x00, 0x00}
		z = append(le32(append(z, h...), crc32.ChecksumIEEE(h)), data...)
		for (len(h)+4+len(data))%4 != 0 {
			z = append(z, 0)
			h = append(h, 0) // only its length matters now
		}
		index = uvarint(uvarint(index, uint64(12+len(data))), uint64(uncompressed[i]))
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = le32(index, crc32.ChecksumIEEE(index))
	z = append(z, index...)
	footer := le32(nil, uint32(len(index)/4-1))
	footer = append(footer, 0x00, 0x00)
	z = le32(z, crc32.ChecksumIEEE(footer))
	return append(append(z, footer...), 'Y', 'Z')
}

// oneByte is LZMA2 data holding one uncompressed chunk ("x", dictionary
// reset) and the end marker.
var oneByte = []byte{0x01, 0x00, 0x00, 'x', 0x00}

func TestDecodeBlockCap(t *testing.T) {
	const maxBlocks = 1024
	blocks := make([][]byte, maxBlocks+1)
	sizes := make([]int, maxBlocks+1)
	for i := range blocks {
		blocks[i], sizes[i] = oneByte, 1
	}
	got, err := xzstream.Decode(buildXZ(blocks[:maxBlocks], sizes[:maxBlocks]), 1<<20)
	if err != nil || string(got) != strings.Repeat("x", maxBlocks) {
		t.Fatalf("%d blocks: %d bytes, %v", maxBlocks, len(got), err)
	}
	got, err = xzstream.Decode(buildXZ(blocks, sizes), 1<<20)
	if !errors.Is(err, xzstream.ErrFormat) || !strings.Contains(err.Error(), "blocks") || got != nil {
		t.Fatalf("%d blocks: %d bytes, %v; want the block cap", maxBlocks+1, len(got), err)
	}
}

func TestDecodeRefusesLZMA2Properties(t *testing.T) {
	// An LZMA chunk (1 byte out, 1 byte in) with properties lc=8, lp=4, pb=4:
	// valid LZMA, not LZMA2 (lc + lp > 4), and 6 MiB of probability tables.
	bad := []byte{0xE0, 0x00, 0x00, 0x00, 0x00, 4*45 + 4*9 + 8, 0x00, 0x00}
	if _, err := xzstream.Decode(buildXZ([][]byte{bad}, []int{1}), 1<<20); !errors.Is(err, xzstream.ErrFormat) || !strings.Contains(err.Error(), "properties") {
		t.Fatalf("lc+lp = 12: %v; want ErrFormat for the properties", err)
	}
	// 1025 chunks that each set new (valid) properties: refused before
	// anything is decoded.
	var many []byte
	for range 1025 {
		many = append(many, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x5D, 0x00)
	}
	many = append(many, 0x00)
	if _, err := xzstream.Decode(buildXZ([][]byte{many}, []int{1025}), 1<<20); !errors.Is(err, xzstream.ErrFormat) || !strings.Contains(err.Error(), "property resets") {
		t.Fatalf("1025 property resets: %v; want the cap", err)
	}
}

func TestDecodeNegativeLimit(t *testing.T) {
	if _, err := xzstream.Decode(read(t, "hello.xz"), -1); err == nil {
		t.Fatal("negative limit accepted")
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"eddsa.crc64.xz", "eddsa.sized.xz", "hello.xz", "empty.xz", "eddsa.delta.xz"} {
		f.Add(read(f, name))
	}
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, z []byte) {
		var got []byte
		var err error
		n := allocated(func() { got, err = xzstream.Decode(z, limit) })
		if err == nil && len(got) > limit {
			t.Fatalf("returned %d bytes over the %d limit", len(got), limit)
		}
		if err != nil && got != nil {
			t.Fatal("returned data with an error")
		}
		// Output buffer and dictionaries are bounded by the limit; each
		// block and each property reset costs fresh decoder tables (under
		// 32 KiB, at least 7 input bytes each), and both are capped at 1024.
		if bound := min(5<<10*uint64(len(z)), 64<<20) + 16*limit + 1<<20; n > bound {
			t.Fatalf("allocated %d bytes for %d input bytes (bound %d)", n, len(z), bound)
		}
	})
}
