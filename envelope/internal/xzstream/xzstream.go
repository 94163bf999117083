package xzstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

const (
	headerLen = 12 // stream header and stream footer are both 12 bytes

	// maxEncodeDict caps the dictionary Encode declares: 8 MiB is xz's own
	// default (preset 6); inputs smaller than that get a dictionary just
	// large enough for them, so decoders (ours and xz -d) allocate little.
	maxEncodeDict = 8 << 20

	// readChunk is the size of the reads from the LZMA2 decoder.
	readChunk = 32 << 10

	// maxBlocks and maxPropsChunks bound the decoder's allocation churn:
	// each block costs a fresh LZMA2 decoder (dictionary of at least 4 KiB,
	// probability tables of up to 24 KiB), and each chunk that carries new
	// properties fresh tables. xz writes one block per stream, or one per
	// 3 × dictionary size (at least 768 KiB) when multi-threaded, and new
	// properties only at the start of a block; 1024 of each allows blocks
	// of 1 KiB for a 1 MiB file while capping the churn near 60 MiB.
	maxBlocks      = 1024
	maxPropsChunks = 1024

	checkNone   = 0x00
	checkCRC32  = 0x01
	checkCRC64  = 0x04
	checkSHA256 = 0x0A

	filterLZMA2 = 0x21

	// maxVarintLen is the longest multibyte integer the format allows (63 bits).
	maxVarintLen = 9
)

var (
	headerMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	footerMagic = []byte{'Y', 'Z'}
	crc64Table  = crc64.MakeTable(crc64.ECMA)
)

// Encode compresses p into one xz stream: one LZMA2 block, CRC64 check.
func Encode(p []byte) ([]byte, error) {
	dict := lzma.MinDictCap
	for dict < len(p) && dict < maxEncodeDict {
		dict <<= 1
	}
	var buf bytes.Buffer
	w, err := xz.WriterConfig{DictCap: dict, CheckSum: xz.CRC64}.NewWriter(&buf)
	if err != nil {
		return nil, fmt.Errorf("xz writer: %w", err)
	}
	if _, err := w.Write(p); err != nil {
		return nil, fmt.Errorf("xz compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("xz compress: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode decompresses src, which must be exactly one xz stream with nothing
// before or after it (no stream padding). Every check type of the format's
// standard set (none, CRC32, CRC64, SHA-256) is verified; the only filter
// accepted is a lone LZMA2. It fails with ErrTooLarge as soon as the output
// would exceed maxOut bytes and with ErrFormat for anything malformed. Memory
// use is bounded by len(src) plus about twice maxOut.
func Decode(src []byte, maxOut int64) ([]byte, error) {
	if maxOut < 0 {
		return nil, fmt.Errorf("xzstream: negative output limit %d", maxOut)
	}
	d := decoder{src: src, maxOut: maxOut}
	if err := d.stream(); err != nil {
		return nil, err
	}
	return d.out.Bytes(), nil
}

type record struct{ unpadded, uncompressed uint64 }

type decoder struct {
	src     []byte
	pos     int
	maxOut  int64
	out     bytes.Buffer
	check   byte
	records []record
	// indexPos is where the index starts, set once the blocks are decoded.
	indexPos int
	// propsChunks counts the LZMA2 chunks that set new properties.
	propsChunks int
	buf         []byte // read buffer, shared by the blocks
}

func formatErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, a...)...)
}

func (d *decoder) stream() error {
	if len(d.src) < 2*headerLen {
		return formatErr("%d bytes is shorter than a stream header and footer", len(d.src))
	}
	h := d.src[:headerLen]
	if !bytes.Equal(h[:6], headerMagic) {
		return formatErr("bad stream header magic")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:12]) {
		return formatErr("stream header CRC32 mismatch")
	}
	if h[6] != 0 || h[7]&0xF0 != 0 {
		return formatErr("reserved stream flags set")
	}
	d.check = h[7]
	if _, err := checkSize(d.check); err != nil {
		return err
	}
	d.pos = headerLen
	for {
		if d.pos >= len(d.src) {
			return formatErr("truncated before the index")
		}
		if d.src[d.pos] == 0x00 { // index indicator
			break
		}
		if err := d.block(); err != nil {
			return err
		}
	}
	if err := d.index(); err != nil {
		return err
	}
	return d.footer()
}

func checkSize(id byte) (int, error) {
	switch id {
	case checkNone:
		return 0, nil
	case checkCRC32:
		return 4, nil
	case checkCRC64:
		return 8, nil
	case checkSHA256:
		return 32, nil
	}
	return 0, formatErr("unsupported check type %#x", id)
}

func newCheck(id byte) hash.Hash {
	switch id {
	case checkCRC32:
		return crc32.NewIEEE()
	case checkCRC64:
		return crc64.New(crc64Table)
	case checkSHA256:
		return sha256.New()
	}
	return nil
}

// uvarint decodes a multibyte integer at the start of b: at most 9 bytes, no
// redundant trailing zero byte.
func uvarint(b []byte) (uint64, int, error) {
	var x uint64
	for i := 0; i < len(b) && i < maxVarintLen; i++ {
		c := b[i]
		x |= uint64(c&0x7F) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, formatErr("non-minimal integer encoding")
			}
			return x, i + 1, nil
		}
	}
	return 0, 0, formatErr("bad integer encoding")
}

// block decodes the block starting at d.pos and appends its output.
func (d *decoder) block() error {
	if len(d.records) == maxBlocks {
		return formatErr("more than %d blocks", maxBlocks)
	}
	start := d.pos
	hsize := (int(d.src[start]) + 1) * 4
	if len(d.src)-start < hsize {
		return formatErr("truncated block header")
	}
	hdr := d.src[start : start+hsize]
	if crc32.ChecksumIEEE(hdr[:hsize-4]) != binary.LittleEndian.Uint32(hdr[hsize-4:]) {
		return formatErr("block header CRC32 mismatch")
	}
	flags := hdr[1]
	if flags&0x3C != 0 {
		return formatErr("reserved block flags set")
	}
	p := hdr[2 : hsize-4]
	next := func() (uint64, error) {
		v, n, err := uvarint(p)
		if err != nil {
			return 0, err
		}
		p = p[n:]
		return v, nil
	}
	compSize, uncompSize := int64(-1), int64(-1)
	if flags&0x40 != 0 {
		v, err := next()
		if err != nil {
			return err
		}
		if v == 0 || v > uint64(len(d.src)) {
			return formatErr("block compressed size %d out of range", v)
		}
		compSize = int64(v)
	}
	if flags&0x80 != 0 {
		v, err := next()
		if err != nil {
			return err
		}
		if v > uint64(d.maxOut) {
			return fmt.Errorf("%w: block declares %d bytes, limit %d", ErrTooLarge, v, d.maxOut)
		}
		uncompSize = int64(v)
	}
	if flags&0x03 != 0 {
		return formatErr("filter chain of %d filters; only a lone LZMA2 is accepted", flags&0x03+1)
	}
	id, err := next()
	if err != nil {
		return err
	}
	propLen, err := next()
	if err != nil {
		return err
	}
	if id != filterLZMA2 || propLen != 1 || len(p) < 1 {
		return formatErr("filter %#x is not LZMA2", id)
	}
	dictCap, err := lzma2DictCap(p[0])
	if err != nil {
		return err
	}
	for _, b := range p[1:] {
		if b != 0 {
			return formatErr("non-zero block header padding")
		}
	}

	dataStart := start + hsize
	// Walk the LZMA2 chunk headers first: they give the exact end of the
	// compressed data and the exact output size, so a bomb is refused before
	// anything is decompressed, and a decoder that stops short of a chunk's
	// declared size is caught below.
	lzLen, total, props, err := walkLZMA2(d.src[dataStart:])
	if err != nil {
		return err
	}
	if d.propsChunks += props; d.propsChunks > maxPropsChunks {
		return formatErr("more than %d LZMA2 property resets", maxPropsChunks)
	}
	if total > d.maxOut-int64(d.out.Len()) {
		return fmt.Errorf("%w: block holds %d bytes, limit %d", ErrTooLarge, total, d.maxOut)
	}
	if uncompSize >= 0 && total != uncompSize {
		return formatErr("block size does not match its header")
	}
	if compSize >= 0 && int64(lzLen) != compSize {
		return formatErr("block compressed size does not match its header")
	}

	// The decoder never needs more history than it has produced, so the
	// buffer is capped by the block's output, whatever the header declares.
	alloc := int64(lzma.MinDictCap)
	if limit := min(dictCap, total); limit > alloc {
		alloc = limit
	}
	src := bytes.NewReader(d.src[dataStart:])
	lr, err := lzma.Reader2Config{DictCap: int(alloc)}.NewReader2(src)
	if err != nil {
		return formatErr("LZMA2: %v", err)
	}
	sum := newCheck(d.check)
	var produced int64
	if d.buf == nil {
		d.buf = make([]byte, readChunk)
	}
	buf := d.buf
	for {
		n, err := lr.Read(buf)
		if n > 0 {
			produced += int64(n)
			if produced > total {
				return formatErr("LZMA2 data is larger than its chunk headers say")
			}
			d.out.Write(buf[:n])
			if sum != nil {
				sum.Write(buf[:n])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return formatErr("LZMA2: %v", err)
		}
	}
	consumed := len(d.src) - dataStart - src.Len()
	if produced != total || consumed != lzLen {
		return formatErr("LZMA2 data does not match its chunk headers")
	}
	d.pos = dataStart + consumed
	for (d.pos-start)%4 != 0 {
		if d.pos >= len(d.src) || d.src[d.pos] != 0 {
			return formatErr("bad block padding")
		}
		d.pos++
	}
	cs, _ := checkSize(d.check)
	if len(d.src)-d.pos < cs {
		return formatErr("truncated block check")
	}
	if sum != nil && !bytes.Equal(checkBytes(sum, d.check), d.src[d.pos:d.pos+cs]) {
		return formatErr("block check mismatch")
	}
	d.pos += cs
	d.records = append(d.records, record{
		unpadded:     uint64(hsize + consumed + cs),
		uncompressed: uint64(produced),
	})
	return nil
}

// walkLZMA2 reads the chunk headers of the LZMA2 data at the start of b and
// returns the length of the data up to and including the end marker, the
// total uncompressed size of its chunks, and how many chunks set new
// properties. It refuses properties LZMA2 does not allow (lc + lp > 4): the
// decoder would otherwise allocate probability tables of up to 6 MiB.
func walkLZMA2(b []byte) (n int, total int64, props int, err error) {
	for {
		if n >= len(b) {
			return 0, 0, 0, formatErr("LZMA2 data has no end marker")
		}
		c := b[n]
		var hlen, skip int
		switch {
		case c == 0x00:
			return n + 1, total, props, nil
		case c == 0x01 || c == 0x02: // uncompressed chunk
			hlen = 3
			if len(b)-n < hlen {
				return 0, 0, 0, formatErr("truncated LZMA2 chunk header")
			}
			size := int(binary.BigEndian.Uint16(b[n+1:])) + 1
			total += int64(size)
			skip = size
		case c >= 0x80: // LZMA chunk; a properties byte follows when c >= 0xC0
			hlen = 5
			if c >= 0xC0 {
				hlen = 6
			}
			if len(b)-n < hlen {
				return 0, 0, 0, formatErr("truncated LZMA2 chunk header")
			}
			if c >= 0xC0 {
				p := b[n+5]
				lc, lp := int(p)%9, int(p)/9%5
				if p >= 9*5*5 || lc+lp > 4 {
					return 0, 0, 0, formatErr("invalid LZMA2 properties %#x", p)
				}
				props++
			}
			total += int64(c&0x1F)<<16 + int64(binary.BigEndian.Uint16(b[n+1:])) + 1
			skip = int(binary.BigEndian.Uint16(b[n+3:])) + 1
		default:
			return 0, 0, 0, formatErr("invalid LZMA2 chunk control byte %#x", c)
		}
		n += hlen
		if len(b)-n < skip {
			return 0, 0, 0, formatErr("truncated LZMA2 chunk")
		}
		n += skip
	}
}

// checkBytes returns the check value as stored in the file: CRC32 and CRC64
// little-endian, SHA-256 as is.
func checkBytes(h hash.Hash, id byte) []byte {
	s := h.Sum(nil)
	if id == checkCRC32 || id == checkCRC64 {
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			s[i], s[j] = s[j], s[i]
		}
	}
	return s
}

// lzma2DictCap decodes the LZMA2 dictionary size property.
func lzma2DictCap(b byte) (int64, error) {
	if b&0xC0 != 0 || b > 40 {
		return 0, formatErr("bad LZMA2 dictionary size %#x", b)
	}
	if b == 40 {
		return 1<<32 - 1, nil
	}
	return int64(2|b&1) << (b/2 + 11), nil
}

// index checks the index against the blocks actually decoded. The record
// count is compared before anything is allocated for it.
func (d *decoder) index() error {
	start := d.pos
	d.indexPos = start
	p := d.src[start+1:] // after the index indicator
	count, n, err := uvarint(p)
	if err != nil {
		return err
	}
	if count != uint64(len(d.records)) {
		return formatErr("index lists %d blocks, stream has %d", count, len(d.records))
	}
	p = p[n:]
	for _, rec := range d.records {
		u, n, err := uvarint(p)
		if err != nil {
			return err
		}
		p = p[n:]
		c, n, err := uvarint(p)
		if err != nil {
			return err
		}
		p = p[n:]
		if u != rec.unpadded || c != rec.uncompressed {
			return formatErr("index record does not match its block")
		}
	}
	d.pos = len(d.src) - len(p)
	for (d.pos-start)%4 != 0 {
		if d.pos >= len(d.src) || d.src[d.pos] != 0 {
			return formatErr("bad index padding")
		}
		d.pos++
	}
	if len(d.src)-d.pos < 4 {
		return formatErr("truncated index")
	}
	if crc32.ChecksumIEEE(d.src[start:d.pos]) != binary.LittleEndian.Uint32(d.src[d.pos:]) {
		return formatErr("index CRC32 mismatch")
	}
	d.pos += 4
	return nil
}

// footer checks the stream footer and that nothing follows it.
func (d *decoder) footer() error {
	indexSize := d.pos - d.indexPos
	f := d.src[d.pos:]
	if len(f) != headerLen {
		if len(f) < headerLen {
			return formatErr("truncated stream footer")
		}
		return formatErr("%d bytes after the stream footer (exactly one stream is accepted)", len(f)-headerLen)
	}
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return formatErr("stream footer CRC32 mismatch")
	}
	if !bytes.Equal(f[10:], footerMagic) {
		return formatErr("bad stream footer magic")
	}
	if f[8] != 0 || f[9] != d.check {
		return formatErr("stream footer flags differ from the header")
	}
	if backward := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4; backward != int64(indexSize) {
		return formatErr("stream footer backward size does not match the index")
	}
	return nil
}
