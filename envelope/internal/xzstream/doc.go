// Package xzstream compresses a byte slice into exactly one xz stream and
// decodes exactly one xz stream under hard memory limits.
//
// Encoding uses github.com/ulikunitz/xz (LZMA2, CRC64, one block). Decoding
// walks the xz container (stream header, blocks, index, footer) itself and
// hands each block's LZMA2 data to github.com/ulikunitz/xz/lzma, because the
// xz package's reader allocates whatever dictionary a block header declares
// (up to 4 GiB) before it has produced a single byte. Here the dictionary
// buffer is at most the output limit: a match can never reach further back
// than the bytes already produced, so a larger buffer is never needed.
//
// Container format: https://tukaani.org/xz/xz-file-format.txt (version 1.2.0).
package xzstream
