package node

import (
	"os"
	"unsafe"
)

// Direct writes of fetched chunks.
//
// A fetched file is fsynced before it is recorded, so the receiver gains
// nothing from keeping the bytes it writes in the page cache; writing them
// with O_DIRECT (where the platform and filesystem have it) sends them from
// our buffer to the disk and leaves the final fsync little to do. On the
// bench machine (a 2-core VM) a buffered write of 1 GiB into fresh page-cache
// pages costs 1.4-2.5 CPU-seconds of kernel time, and the fsync after it
// another second of wall time; the same GiB written with O_DIRECT in 1 MiB
// blocks costs 0.2 CPU-seconds with the fsync (BENCHMARKS.md, Sync).
//
// O_DIRECT wants offsets, lengths and buffer addresses aligned to the
// device's block. The chunks of a file arrive mostly in file order, so each
// staged file collects a run of contiguous fetched bytes in an aligned buffer
// and writes it out in whole blocks; the unaligned head and tail of a run,
// and any chunk when no buffer is free, go through the ordinary descriptor.
// A direct block never shares a page with a buffered write: the bytes of a
// block all belong to one run, and every byte of the file is written once.
const (
	// directAlign is the alignment of direct writes: the page size, a
	// multiple of every common logical block size.
	directAlign = 4096
	// directBufSize is one run buffer: the size of a direct write.
	directBufSize = 1 << 20
	// maxDirectBuffers bounds the run buffers held at once (memory:
	// maxDirectBuffers * directBufSize). A file holds one from its first
	// fetched chunk until its run breaks or its last chunk arrives.
	maxDirectBuffers = 4
	// directMinFetch is the smallest file written directly: below it, the
	// extra descriptor costs more than the page cache does.
	directMinFetch = 2 * directBufSize
)

// directWriter is the direct side of one staged file.
type directWriter struct {
	f     *os.File // opened with O_DIRECT
	buf   []byte   // the current run, nil when none; len(buf) == directBufSize
	start int64    // file offset of buf[0], a multiple of directAlign
	n     int      // bytes of the run held in buf
}

// directPool hands out the aligned run buffers of one Apply.
type directPool struct {
	free  [][]byte
	alloc int
}

func (p *directPool) get() []byte {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	if p.alloc >= maxDirectBuffers {
		return nil
	}
	p.alloc++
	return alignedBuf(directBufSize)
}

func (p *directPool) put(b []byte) { p.free = append(p.free, b) }

// alignedBuf returns n bytes starting at an address that is a multiple of
// directAlign.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); rem != 0 {
		skip = directAlign - rem
	}
	return b[skip : skip+n : skip+n]
}

// writeFetched writes a fetched chunk's bytes at off in s, directly when it
// can. Callers serialise the calls of one Apply.
func (s *stagedFile) writeFetched(r *run, data []byte, off int64) error {
	if s.direct == nil && !s.noDirect {
		s.openDirect(r.a)
	}
	d := s.direct
	if d == nil {
		_, err := s.f.WriteAt(data, off)
		return err
	}
	if d.buf != nil && off != d.start+int64(d.n) { // the run breaks
		if err := s.endRun(r); err != nil {
			return err
		}
	}
	if d.buf == nil {
		head := int((directAlign - off%directAlign) % directAlign)
		if head >= len(data) {
			_, err := s.f.WriteAt(data, off)
			return err
		}
		if head > 0 {
			if _, err := s.f.WriteAt(data[:head], off); err != nil {
				return err
			}
			data, off = data[head:], off+int64(head)
		}
		if d.buf = r.direct.get(); d.buf == nil {
			_, err := s.f.WriteAt(data, off)
			return err
		}
		d.start, d.n = off, 0
	}
	for len(data) > 0 {
		k := copy(d.buf[d.n:], data)
		d.n += k
		data = data[k:]
		if d.n == len(d.buf) {
			if err := s.writeBlocks(r, d.buf, d.start); err != nil {
				return err
			}
			d.start += int64(d.n)
			d.n = 0
		}
	}
	return nil
}

// endRun writes what the current run holds (whole blocks directly, the
// partial last block through the page cache) and frees its buffer.
func (s *stagedFile) endRun(r *run) error {
	d := s.direct
	if d == nil || d.buf == nil {
		return nil
	}
	buf, n := d.buf, d.n
	d.buf, d.n = nil, 0
	defer r.direct.put(buf)
	whole := n &^ (directAlign - 1)
	if whole > 0 {
		if err := s.writeBlocks(r, buf[:whole], d.start); err != nil {
			return err
		}
	}
	if n > whole {
		if _, err := s.f.WriteAt(buf[whole:n], d.start+int64(whole)); err != nil {
			return err
		}
	}
	return nil
}

// writeBlocks writes aligned whole blocks through the direct descriptor; if
// the filesystem refuses, it writes them through the page cache and stops
// writing this file directly.
func (s *stagedFile) writeBlocks(r *run, b []byte, off int64) error {
	if s.direct.f != nil {
		if _, err := s.direct.f.WriteAt(b, off); err == nil {
			r.res.BytesDirect += int64(len(b))
			return nil
		}
		s.direct.f.Close()
		s.direct.f = nil
		s.noDirect = true
	}
	_, err := s.f.WriteAt(b, off)
	return err
}

// openDirect opens s's temporary file a second time, for direct writes, if
// the file is large enough to gain from it and the filesystem allows it.
func (s *stagedFile) openDirect(a *Applier) {
	s.noDirect = true // one attempt per file
	if oDirect == 0 || s.want.Size < directMinFetch {
		return
	}
	f, err := a.Root.OpenFile(s.tmp, os.O_WRONLY|oDirect, 0)
	if err != nil {
		return
	}
	s.direct = &directWriter{f: f}
}

// closeDirect ends s's run and closes its direct descriptor.
func (s *stagedFile) closeDirect(r *run) error {
	if s.direct == nil {
		return nil
	}
	err := s.endRun(r)
	if s.direct.f != nil {
		if cerr := s.direct.f.Close(); err == nil {
			err = cerr
		}
	}
	s.direct = nil
	return err
}
